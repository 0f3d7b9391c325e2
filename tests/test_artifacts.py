"""Artifacts: round trip, verification, format versions, and crash safety under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gan4rec.artifacts import FORMAT_VERSION, atomic_write_text, load_artifact, save_artifact
from gan4rec.errors import ArtifactError, MissingInputError


def _current(path: Path) -> Path:
    return path / (path / "CURRENT").read_text().strip()


def test_round_trip_and_new_version_replaces_old(tmp_path: Path) -> None:
    a = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "idx": np.array([1, 5], dtype=np.int64)}
    save_artifact(tmp_path / "m", a, {"note": "first"})
    arrays, meta = load_artifact(tmp_path / "m")
    assert meta["note"] == "first" and meta["format_version"] == FORMAT_VERSION
    np.testing.assert_array_equal(arrays["w"], a["w"])
    assert arrays["idx"].dtype == np.int64
    save_artifact(tmp_path / "m", {"w": np.ones(3, dtype=np.float32)}, {"note": "second"})
    arrays, meta = load_artifact(tmp_path / "m")
    assert meta["note"] == "second" and set(arrays) == {"w"}
    # Only the live version remains, and the version folder itself is loadable.
    versions = [p for p in (tmp_path / "m").iterdir() if p.is_dir()]
    assert versions == [_current(tmp_path / "m")]
    assert load_artifact(versions[0])[1]["note"] == "second"


def test_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="not a gan4rec artifact"):
        save_artifact(tmp_path / "m", {}, {})
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_meta_must_be_json_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_artifact(tmp_path / "m", {}, {"bad": object()})
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupted(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match="no such model artifact"):
        load_artifact(tmp_path / "nope")
    save_artifact(tmp_path / "m", {"w": np.zeros(4, dtype=np.float32)}, {})
    tensors = _current(tmp_path / "m") / "tensors.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        load_artifact(tmp_path / "m")


def _rewrite_meta(path: Path, **changes: object) -> None:
    """Edit meta.json and re-seal the manifest, as a newer/older gan4rec would have written it."""
    import hashlib

    folder = _current(path)
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    blob = (folder / "meta.json").read_bytes()
    manifest["files"]["meta.json"] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


def test_format_version_too_new_or_too_old(tmp_path: Path) -> None:
    save_artifact(tmp_path / "m", {"w": np.zeros(2, dtype=np.float32)}, {})
    _rewrite_meta(tmp_path / "m", format_version=FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="newer than this gan4rec reads"):
        load_artifact(tmp_path / "m")
    _rewrite_meta(tmp_path / "m", format_version=0)
    with pytest.raises(ArtifactError, match="older than this gan4rec reads"):
        load_artifact(tmp_path / "m")


def test_shape_mismatch_and_non_finite(tmp_path: Path) -> None:
    save_artifact(tmp_path / "m", {"w": np.zeros(2, dtype=np.float32)}, {})
    _rewrite_meta(tmp_path / "m", tensors={"w": {"shape": [3], "dtype": "float32"}})
    with pytest.raises(ArtifactError, match="expected float32\\[3\\]"):
        load_artifact(tmp_path / "m")
    save_artifact(tmp_path / "n", {"w": np.array([1.0, np.nan], dtype=np.float32)}, {})
    with pytest.raises(ArtifactError, match="non-finite"):
        load_artifact(tmp_path / "n")


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "r.json", "old")
    atomic_write_text(tmp_path / "r.json", "new")
    assert (tmp_path / "r.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


_WRITER = """
import sys, numpy as np
from gan4rec.artifacts import save_artifact
path = sys.argv[1]
for v in range(1, 10_000):
    w = np.full(2_000_000, float(v), dtype=np.float32)  # 8 MB per save, so kills land mid-write
    save_artifact(path, {"w": w, "v": np.array([v], dtype=np.int64)}, {"v": v})
    print(v, flush=True)
"""


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.55, 0.8, 1.1, 1.7])
def test_sigkill_leaves_previous_complete_artifact_or_none(tmp_path: Path, delay: float) -> None:
    """Kill a process that saves again and again; what is left must load whole, or not be there at all."""
    path = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    completed = [int(x) for x in out.split()]
    try:
        arrays, meta = load_artifact(path)
    except MissingInputError:
        assert not completed, "a completed save must survive the kill"
        assert not path.exists()
        return
    v = meta["v"]
    assert int(arrays["v"][0]) == v
    assert np.all(arrays["w"] == float(v)), "tensors and metadata come from the same save"
    # The last save reported complete is there, or a later one that finished before the kill.
    assert not completed or v >= completed[-1]


def test_atomic_writes_get_the_mode_open_would_give(tmp_path: Path) -> None:
    # mkstemp makes 0600 files; a report renamed into place must be readable like any file the user writes.
    old = os.umask(0o027)
    try:
        out = atomic_write_text(tmp_path / "r.json", "{}")
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    out = atomic_write_text(tmp_path / "s.json", "{}")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~old
