"""The README's Python quickstart runs as written (so it cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README has a python quickstart block"
    lines = code.group(1).strip().splitlines()
    assert len(lines) <= 15, "the quickstart stays within 15 lines"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN4REC_OFFLINE", "1")
    namespace: dict = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "runs").exists(), "the quickstart saves a model"
    assert namespace["items"].shape == (3, 10)
