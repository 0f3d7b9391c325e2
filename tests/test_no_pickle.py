"""No pickle anywhere in the library: artifacts, checkpoints and caches are data (safetensors + JSON)."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gan4rec"
FORBIDDEN = re.compile(r"import pickle|pickle\.load|torch\.load\(|allow_pickle=True|import cloudpickle|import dill")


def test_no_pickle_in_src() -> None:
    files = list(SRC.rglob("*.py"))
    assert len(files) > 10, "the source tree was found"
    offenders = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
