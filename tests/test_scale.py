"""Benchmark scripts (the ML-20M-scale run, CFGAN speed, the issue-8 comparison), run on tiny data or fake
records: they work end to end and report what they claim."""

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


def test_cfgan_speed_row_separates_the_epochs_from_the_fit_setup() -> None:
    """``run_one`` times the whole fit and, from the loop's history, the epochs alone; the FLOP rate of the
    epochs alone is at least the whole fit's."""
    from gan4rec.data.synthetic import make_synthetic
    from gan4rec.models.gan.cfgan import CFGAN

    bench = _module("cfgan_speed")
    data = make_synthetic(60, 40, 900, random_state=0)
    model = CFGAN(g_hidden=8, d_hidden=4, g_batch_size=16, d_batch_size=16, epochs=2, device="cpu", random_state=0)
    row = bench.run_one("tiny", model, data, epochs=2, ceiling=1e-3, note="test")  # tiny: the ratio stays > 0 after rounding
    assert len(model.history_) == 2
    assert 0 < row["epoch_s"] <= row["wall_s"]
    assert abs(row["setup_s"] - (row["wall_s"] - row["epoch_s"])) <= 0.0016  # each field rounded to 1 ms
    assert row["ratio_epochs"] >= row["ratio"] > 0
    assert row["steps"] > 0 and row["gflop"] >= 0


def test_cfgan_speed_kernel_breakdown_names_the_ops_cfgan_runs() -> None:
    """Every kind the breakdown names (products, Adam, sparse gathers) is found among the ops a CFGAN fit
    runs, so a renamed torch op cannot silently drop out of the floor; the floor is products plus Adam."""
    from gan4rec.data.synthetic import make_synthetic
    from gan4rec.models.gan.cfgan import CFGAN

    bench = _module("cfgan_speed")
    data = make_synthetic(60, 40, 900, random_state=0)
    model = CFGAN(g_hidden=8, d_hidden=4, g_batch_size=16, d_batch_size=16, epochs=2, device="cpu", random_state=0)
    row = bench._kernel_times("tiny", model, data, 10)
    proj = row["projected_s"]
    assert row["run"] == "tiny-profile"
    assert set(proj) == {*bench._KINDS, "other torch ops", "outside torch ops"}
    for kind in bench._KINDS:
        assert proj[kind] > 0, kind
    assert math.isclose(row["floor_s"], proj[bench._PRODUCTS] + proj[bench._ADAM])


def _issue8_record(tmp_path: Path, name: str, variants: dict, **over: object) -> Path:
    rec = {"kind": "issue8-adversarial-vs-ease", "dataset": {"split_fingerprint": "abc", "n_users": 3},
           "stage": "test", "trials": 2, "valid_repeats": 1, "seeds": [0, 1], "variants": variants, **over}
    path = tmp_path / name
    path.write_text(json.dumps(rec))
    return path


def test_issue8_combine_merges_parallel_runs_and_refuses_mismatched_ones(tmp_path: Path, capsys) -> None:
    """``--combine`` tests the variants of several ``--json`` files against the candidate from their per-user
    values, and refuses files from different protocols or without per-user values."""
    import pytest

    bench = _module("adversarial_vs_ease")

    def variant(valid: list[float], test: list[float]) -> dict:
        return {"valid_mean": sum(valid) / 3, "valid_std": 0.0, "test_mean": sum(test) / 3, "test_std": 0.0,
                "valid_users": valid, "test_users": test, "params": {}, "runs": []}

    a = _issue8_record(tmp_path, "a.json", {"easegan": variant([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])})
    b = _issue8_record(tmp_path, "b.json", {"ease": variant([0.5, 0.5, 0.5], [0.4, 0.4, 0.4])})
    out = tmp_path / "merged.json"
    common = ["--stage", "test", "--trials", "2", "--seeds", "2"]
    assert bench.main([*common, "--combine", str(a), str(b), "--json", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert set(merged["variants"]) == {"easegan", "ease"}
    assert merged["variants"]["ease"]["test_users"] == [0.4, 0.4, 0.4]  # per-user values kept
    sig = merged["significance"]["test"]["ease"]
    assert abs(sig["mean_diff"] - 0.1) < 1e-12 and 0 < sig["wilcoxon_p_holm"] <= 1
    assert "ease" in capsys.readouterr().out
    other = _issue8_record(tmp_path, "c.json", {"ease": variant([0.5] * 3, [0.4] * 3)}, valid_repeats=5)
    with pytest.raises(SystemExit, match="does not match"):
        bench.main([*common, "--combine", str(a), str(other)])
    old = _issue8_record(tmp_path, "d.json", {"ease": {"valid_mean": 0.5}})
    with pytest.raises(SystemExit, match="no per-user values"):
        bench.main([*common, "--combine", str(a), str(old)])
