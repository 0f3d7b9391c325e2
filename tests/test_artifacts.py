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


# ------------------------------------------------------------------------------------------ portability
def _reseal_meta(path: Path, **params: object) -> None:
    """Edit the saved params in meta.json and re-seal the manifest, as a hand-edited artifact would be."""
    import hashlib

    folder = _current(path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["params"].update(params)
    (folder / "meta.json").write_text(json.dumps(meta))
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    blob = (folder / "meta.json").read_bytes()
    manifest["files"]["meta.json"] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


def _small_train():
    from gan4rec.data.idmap import IdMap
    from gan4rec.data.interactions import Interactions

    rng = np.random.default_rng(0)
    dense = rng.random((12, 9)) < 0.4
    dense[np.arange(12), np.arange(12) % 9] = True
    u, i = np.nonzero(dense)
    return Interactions.from_indices(u, i, IdMap(np.arange(12)), IdMap(np.arange(9)))


@pytest.mark.parametrize("name", ["bpr", "cfgan"])
def test_model_trained_on_cuda_loads_and_scores_on_this_machine(name: str, tmp_path: Path) -> None:
    """``train --device cuda`` records device='cuda' (and CFGAN may record bf16); a CPU-only machine loads it."""
    import torch

    from gan4rec.artifacts import read_artifact_meta
    from gan4rec.models import create
    from gan4rec.models.base import Recommender

    train = _small_train()
    params = {"epochs": 2, "device": "cpu"} | ({"g_hidden": 8, "d_hidden": 8} if name == "cfgan" else {})
    model = create(name, params, random_state=0).fit(train)
    model.save(tmp_path / "m")
    _reseal_meta(tmp_path / "m", device="cuda:3", **({"precision": "bf16"} if name == "cfgan" else {}))
    loaded = Recommender.load(tmp_path / "m")
    users = np.arange(train.n_users)
    if not torch.cuda.is_available():
        assert loaded.get_params()["device"] is None and loaded.device_.type == "cpu"
        np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert read_artifact_meta(tmp_path / "m")["params"]["device"] == "cuda:3", "the recorded device stays"
    pinned = Recommender.load(tmp_path / "m", device="cpu")
    assert pinned.get_params()["device"] == "cpu"
    np.testing.assert_array_equal(pinned.score(users), model.score(users))
    for bad in (5, "warp:drive", ["cpu"]):
        _reseal_meta(tmp_path / "m", device=bad)
        with pytest.raises(ArtifactError, match="is not a torch device"):
            Recommender.load(tmp_path / "m")


# ------------------------------------------------------------------------------------------ staging
def _host() -> str:
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_load_sweeps_only_clearly_stale_staging_folders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "m"
    save_artifact(path, {"w": np.zeros(2, dtype=np.float32)}, {})
    live = _current(path).name
    dead, host = _dead_pid(), _host()

    def staging(name: str, age: float = 0.0) -> Path:
        folder = path / name if name.startswith(".staging-") else tmp_path / name
        (folder / "v").mkdir(parents=True)
        (folder / "v" / "tensors.safetensors").write_bytes(b"\0" * 1000)
        when = time.time() - age
        for p in (folder / "v" / "tensors.safetensors", folder / "v", folder):
            os.utime(p, (when, when))
        return folder

    gone = [
        staging(f".staging-v1-pid{dead}-{host}"),  # its writer is dead
        staging(f".m.staging-ab12cd34-pid{dead}-{host}"),  # a first save's, beside the artifact
        staging(".staging-v2", age=120),  # an old name without owner, untouched for two minutes
        staging(f".staging-v3-pid{os.getpid()}-{host}", age=120),  # idle for two minutes
    ]
    kept = [
        staging(f".staging-v4-pid{os.getpid()}-{host}"),  # a save in progress here
        staging(f".staging-v5-pid{dead}-0000abcd"),  # another host's save in progress
        staging(".staging-v6"),  # recent, owner unknown
        staging(".n.staging-ab12cd34", age=120),  # another artifact's
    ]
    with caplog.at_level("WARNING", logger="gan4rec.artifacts"):
        load_artifact(path)
    assert [p.exists() for p in gone] == [False] * 4 and all(p.exists() for p in kept)
    assert _current(path).name == live and caplog.text.count("left by an interrupted save") == 4
    # Loading a version folder sweeps its artifact too; a missing artifact sweeps its first save's staging.
    staging(f".staging-v7-pid{dead}-{host}")
    load_artifact(_current(path))
    assert not (path / f".staging-v7-pid{dead}-{host}").exists()
    first = staging(f".x.staging-00000000-pid{dead}-{host}")
    with pytest.raises(MissingInputError):
        load_artifact(tmp_path / "x")
    assert not first.exists()


def test_sigkill_midway_then_load_leaves_no_staging(tmp_path: Path) -> None:
    path = tmp_path / "m"
    save_artifact(path, {"w": np.zeros(1, dtype=np.float32)}, {})
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    while not list(path.glob(".staging-*")) and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    load_artifact(path)
    assert not list(path.glob(".staging-*")), "the killed save's staging folder was swept"


# ------------------------------------------------------------------------------------------ CSR checks
@pytest.mark.parametrize(
    ("indptr", "indices", "match"),
    [
        ([0, 2, 3], [0, 1, 2], None),
        ([0, 0, 3], [0, 1, 2], None),
        ([1, 2, 3], [0, 1, 2], "runs 1..3"),
        ([0, 2, 4], [0, 1, 2], "runs 0..4, expected 0..3"),
        ([0, 3, 1, 3], [0, 1, 2], "decreases at row 1"),
        ([0, 2, 3], [0, 4, 2], "column index 4"),
        ([0, 2, 3], [1, 0, 2], "row 0 are unsorted"),
        ([0, 2, 3], [1, 1, 2], "row 0 are unsorted"),
        ([0.0, 2.0, 3.0], [0, 1, 2], "integer"),
    ],
)
def test_check_csr(indptr: list, indices: list, match: str | None) -> None:
    from gan4rec.models.base import check_csr

    ip, ix = np.array(indptr), np.array(indices)
    if match is None:
        check_csr(ip, ix, len(ip) - 1, 3, "m", sorted_rows=True)
        return
    with pytest.raises(ArtifactError, match=match):
        check_csr(ip, ix, len(ip) - 1, 3, "m", sorted_rows=True)
