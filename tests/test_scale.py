"""The ML-20M-scale benchmark scripts, run on tiny data: they work end to end and report what they claim."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str) -> ModuleType:
    path = ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(f"bench_{name}", module)
    spec.loader.exec_module(module)
    return module


def test_scale_benchmark_end_to_end(tmp_path: Path) -> None:
    """At 1/2000 of ML-20M (69 users, every item, 10,000 interactions): all stages run, in order, and the
    JSON holds a time, a CPU time and a peak RSS per stage, the evaluated users and finite metrics."""
    bench = _module("scale_ml20m")
    out = tmp_path / "scale.json"
    assert bench.main(["--scale", "0.0005", "--threads", "1", "--csv", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    stages = [r["stage"] for r in doc["stages"]]
    assert stages == [
        "generate", "save-parquet", "save-csv", "load-csv", "load-parquet", "split", "train", "evaluate"
    ]
    for r in doc["stages"]:
        assert r["wall_s"] >= 0 and r["cpu_s"] >= 0 and r["peak_rss_gb"] > 0, r
    info = doc["info"]
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (69, 26_744, 10_000)
    assert info["loaded_users"] == 69 and info["loaded_nnz"] == 10_000  # the file round trip loses nothing
    assert 0 < info["eval_users"] <= 69
    assert all(math.isfinite(v) for v in info["metrics"].values())
    assert doc["machine"]["torch_threads"] == 1
    assert doc["peak_rss_gb"] == max(r["peak_rss_gb"] for r in doc["stages"]) or not doc["per_stage_peaks"]
    assert not list(tmp_path.glob("*.parquet"))  # the data files were in a temporary folder


def test_peak_reset_tracks_a_stage(tmp_path: Path) -> None:
    """A stage that allocates 200 MB shows a peak at least that much above the RSS it started from."""
    import numpy as np

    bench = _module("scale_ml20m")
    st = bench.Stages()
    with st.stage("alloc"):
        block = np.ones(200 * 2**20 // 8)
        del block
    row = st.rows[0]
    if st.per_stage_peaks:
        assert row["peak_rss_gb"] - row["rss_before_gb"] >= 0.18


def test_baselines_child_rows_name_the_failure() -> None:
    """A refusal's JSON row passes through; a signal and a crash become one-line errors."""
    bench = _module("baselines")

    def proc(rc: int, out: str = "", err: str = "") -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(["x"], rc, out, err)

    refusal = {"model": "ease", "error": "EASE on 90000 items needs about 90.5 GiB, more than max_memory_gb=16"}
    assert bench._child_row("ease", proc(3, json.dumps(refusal) + "\n")) == refusal
    assert bench._child_row("slim", proc(-9))["error"] == "killed by SIGKILL (most likely the out-of-memory killer)"
    crash = bench._child_row("bpr", proc(1, "", "Traceback ...\nRuntimeError: boom\n"))
    assert crash["error"] == "failed (exit 1): RuntimeError: boom"
