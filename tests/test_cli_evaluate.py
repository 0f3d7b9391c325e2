"""``gan4rec evaluate MODEL_DIR`` with no data options: the data recorded in the model, read cautiously."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from gan4rec.cli import main

SECRET = "SECRET-first-line-7f3a"
ROWS = "user,item,rating\n" + "".join(f"{u},{i},{1 + (u * 7 + i) % 5}\n"
                                      for u in range(30) for i in range(40) if (u * 3 + i * 5) % 7 < 3)


def rewrite_meta(model: Path, **changes: object) -> None:
    """Change meta.json as a hostile or careless editor would, keeping the manifest consistent."""
    folder = model / (model / "CURRENT").read_text().strip()
    meta = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    raw = json.dumps(meta).encode()
    (folder / "meta.json").write_bytes(raw)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["files"]["meta.json"] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An itemknn model trained from a relative CSV path with non-default reading flags."""
    root = tmp_path_factory.mktemp("cli-evaluate")
    (root / "ratings.csv").write_text(ROWS.replace(",", ";"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert main(["-q", "train", "--model", "itemknn", "--data", "ratings.csv", "--sep", ";",
                     "--min-rating", "2", "--ks", "5,10", "--save", "model", "--json", "train.json"]) == 0
    return {"root": root, "model": root / "model", "result": root / "train.json"}


def _copy(trained: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained["model"], tmp_path / "model"))


def test_evaluate_without_data_options_reads_the_recorded_file(trained: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # elsewhere: the recorded path is absolute
    code = main(["evaluate", str(trained["model"]), "--json", "e.json"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"evaluate: reading {trained['root'] / 'ratings.csv'}" in err, "says which file it reads"
    trained_test = json.loads(trained["result"].read_text())["metrics"]["test"]
    assert json.loads((tmp_path / "e.json").read_text())["metrics"]["test"] == trained_test


def test_flags_replace_the_recorded_source_and_keep_its_reading_options(
        trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "evaluate", str(trained["model"]), "--data", str(trained["root"] / "ratings.csv")])
    assert code == 0, capsys.readouterr().err


def test_an_artifact_of_the_older_format_still_evaluates(trained: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Artifacts saved before ``data_spec`` record only ``data`` (source and format)."""
    model = _copy(trained, tmp_path)
    rewrite_meta(model, data_spec=None, data={"file": str(trained["root"] / "ratings.csv"), "format": "auto"})
    # The old record lacks --sep and --min-rating: the reading flags complete it.
    assert main(["-q", "evaluate", str(model), "--sep", ";", "--min-rating", "2"]) == 0, capsys.readouterr().err


def test_a_missing_recorded_file_exits_66_naming_the_flag(trained: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = _copy(trained, tmp_path)
    gone = tmp_path / "moved-away.csv"
    rewrite_meta(model, data_spec={"data": str(gone), "sep": ";"})
    assert main(["evaluate", str(model)]) == 66
    err = capsys.readouterr().err
    assert str(gone) in err and "missing" in err and "pass --data FILE" in err
    rewrite_meta(model, data_spec={"train": str(gone), "test": str(gone)})
    assert main(["evaluate", str(model)]) == 66
    assert "pass --train FILE --test FILE" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["auto", "csv", "tsv", "uir", "parquet"])
@pytest.mark.parametrize("record", ["data_spec", "data"])
def test_a_hostile_meta_never_shows_the_file_it_names(trained: dict[str, Path], tmp_path: Path, fmt: str,
                                                      record: str, capsys: pytest.CaptureFixture[str]) -> None:
    """meta.json pointing at a file the user did not name: its content never reaches the output."""
    secret = tmp_path / "passwd"
    secret.write_text(f"{SECRET}:x:0:0\nroot:x:0:0:root:/root:/bin/bash\n")
    model = _copy(trained, tmp_path)
    if record == "data_spec":
        rewrite_meta(model, data_spec={"data": str(secret), "format": fmt})
    else:
        rewrite_meta(model, data_spec=None, data={"file": str(secret), "format": fmt})
    for debug in ([], ["--debug"]):
        code = main([*debug, "evaluate", str(model)])
        out, err = capsys.readouterr()
        assert code == 65, err
        assert SECRET not in out + err
        assert str(secret) in err and "pass --data FILE to see the full error" in err
    # Named on the command line, the same file gives the full error.
    assert main(["evaluate", str(model), "--data", str(secret), "--format", "csv"]) == 65
    assert SECRET in capsys.readouterr().err


def test_a_recorded_dataset_is_never_downloaded(trained: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    model = _copy(trained, tmp_path)
    rewrite_meta(model, data_spec={"dataset": "ml-100k"})
    cache = tmp_path / "cache"
    monkeypatch.setenv("GAN4REC_DATA", str(cache))
    monkeypatch.delenv("GAN4REC_OFFLINE", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluate tried to download what an artifact names")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    assert main(["evaluate", str(model)]) == 66
    err = capsys.readouterr().err
    assert "not in the local cache" in err and "--dataset ml-100k" in err
    assert not cache.exists()
    rewrite_meta(model, data_spec={"dataset": "no-such-set"})
    assert main(["evaluate", str(model)]) == 65
    assert "unknown dataset 'no-such-set'" in capsys.readouterr().err


@pytest.mark.parametrize("changes", [
    {"data_spec": {"data": "{secret}", "min_user_interactions": "many"}},
    {"data_spec": {"data": "{secret}", "columns": {"user": 0, "item": 1}, "sep": ":"}},
    {"data_spec": {"data": "{secret}", "format": "movielens"}},
    {"protocol": {"ks": "abc"}},
    {"protocol": {"split": "nosuch"}},
], ids=["bad-type", "secret-parses", "movielens", "bad-ks", "bad-split"])
def test_a_hostile_meta_of_odd_values_exits_65_quietly(trained: dict[str, Path], tmp_path: Path,
                                                       changes: dict[str, dict[str, object]],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "passwd"
    secret.write_text(f"{SECRET}:x:0:0\n" * 5)
    model = _copy(trained, tmp_path)
    filled = {k: {f: str(secret) if v == "{secret}" else v for f, v in d.items()} for k, d in changes.items()}
    rewrite_meta(model, **filled)
    code = main(["evaluate", str(model)])
    out, err = capsys.readouterr()
    assert code == 65, err
    assert SECRET not in out + err, err
    assert [line for line in err.splitlines() if not line.startswith("evaluate: reading")] == [
        err.splitlines()[-1]], "one error line (after the log of what it reads)"
