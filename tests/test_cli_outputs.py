"""What the gan4rec command writes: file modes that honour the umask, --quiet, explain's table."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gan4rec.cli import main

ROWS = "user,item,rating\n" + "".join(f"{u},{i},{1 + (u * 7 + i) % 5}\n"
                                      for u in range(30) for i in range(40) if (u * 3 + i * 5) % 7 < 3)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _train(tmp_path: Path, *extra: str) -> int:
    data = tmp_path / "ratings.csv"
    data.write_text(ROWS)
    return main(["-q", "train", "--model", "ease", "--data", str(data), *extra])


def test_json_and_save_outputs_honour_the_umask(tmp_path: Path, umask_022: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path, "--save", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")) == 0
    assert _mode(tmp_path / "r.json") == 0o644
    saved = [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
    assert saved and {_mode(p) for p in saved} == {0o644}, {str(p): oct(_mode(p)) for p in saved}
    assert main(["-q", "evaluate", str(tmp_path / "m"), "--json", str(tmp_path / "e.json")]) == 0
    assert _mode(tmp_path / "e.json") == 0o644


def test_recommend_out_honours_the_umask(tmp_path: Path, umask_022: None) -> None:
    assert _train(tmp_path, "--save", str(tmp_path / "m")) == 0
    for name in ("x.csv", "x.parquet"):
        assert main(["-q", "recommend", str(tmp_path / "m"), "-k", "3", "--out", str(tmp_path / name)]) == 0
        assert _mode(tmp_path / name) == 0o644


def test_quiet_silences_progress_and_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path, "--save", str(tmp_path / "m")) == 0
    out, err = capsys.readouterr()
    assert err == "" and "test:" in out, "-q: results on stdout, nothing on stderr"
    assert main(["evaluate", str(tmp_path / "m")]) == 0
    assert "evaluate: reading" in capsys.readouterr().err, "without -q the progress is logged"
    assert main(["-q", "evaluate", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().err == ""


def test_quiet_turns_progress_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under --quiet (the gan4rec logger at WARNING) no bar is made; at INFO tqdm decides (a TTY only)."""
    import logging

    import tqdm.auto

    from gan4rec._progress import progress

    seen: list[object] = []

    class Bar:
        def __init__(self, iterable: object, **kwargs: object) -> None:
            seen.append(kwargs["disable"])
            self.iterable = iterable

        def __iter__(self) -> Iterator[object]:
            return iter(self.iterable)  # type: ignore[call-overload]

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    root = logging.getLogger("gan4rec")
    before = root.level
    try:
        root.setLevel(logging.WARNING)  # setLevel, not the attribute: it clears the loggers' level cache
        assert list(progress(range(3), desc="x")) == [0, 1, 2]
        assert seen == [], "quiet: no bar at all"
        root.setLevel(logging.INFO)
        assert list(progress(range(3), desc="x")) == [0, 1, 2]
        assert seen == [None], "at INFO tqdm decides (disable=None: a bar on a terminal only)"
    finally:
        root.setLevel(before)


def test_explain_prints_column_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path, "--save", str(tmp_path / "m")) == 0
    meta = json.loads(next((tmp_path / "m").glob("v*/meta.json")).read_text())
    user, item = meta["user_map"]["ids"][0], meta["item_map"]["ids"][-1]
    capsys.readouterr()
    assert main(["explain", str(tmp_path / "m"), "--user", str(user), "--item", str(item), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["rank", "item", "weight"])
    assert len(lines) - header - 1 == 3, "three rows under the header"
