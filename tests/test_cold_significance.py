"""``benchmarks/cold_significance.py``: the pre-registered Q1/Q2 tests from per-user cold-start results.

Expected: the comparator is the non-GAN hybrid best on seed-0 VALIDATION overall (not test); each user's
value is their mean over the seeds where both models ran; the tests pair users by id; Holm adjusts over all
tests; the script writes its JSON.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cold_significance", ROOT / "benchmarks" / "cold_significance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(model: str, seed: int, valid_overall: float, test_overall: float) -> dict:
    tasks = {t: {"NDCG@20": test_overall, "Precision@20": 0.0, "Recall@20": 0.0} for t in ("warm", "cold", "overall")}
    return {"model": model, "seed": seed, "valid": {"overall": {"NDCG@20": valid_overall}}, "test": tasks}


def _write(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows, per_user = [], {}
    valid = {"content-knn": 0.2, "ease-side": 0.3, "ridge-map": 0.1, "dropoutnet": 0.05, "gar": 0.0, "gar-reg": 0.0}
    shift = {"content-knn": 0.5, "ease-side": 0.0, "ridge-map": 0.2, "dropoutnet": 0.1, "gar": 0.05, "gar-reg": 0.2}
    for seed in (0, 1):
        users = [f"u{i}" for i in range(seed, 40 + seed)]  # seed 1 has one user seed 0 lacks, and vice versa
        for model, v in valid.items():
            if model == "gar-reg" and seed == 1:
                continue  # a seed that did not run for one model
            rows.append(_row(model, seed, v, shift[model]))
            vals = (shift[model] + 0.01 * rng.random(len(users))).tolist()
            per_user[f"{model}/{seed}"] = {t: {"users": users, "NDCG@20": vals} for t in ("warm", "cold", "overall")}
    rows.append({"model": "ials-backbone", "seed": 0, "fit_s": 1.0, "peak_rss_mb": 1.0})
    path = tmp_path / "cold-x.json"
    path.write_text(json.dumps({"rows": rows}))
    path.with_suffix(".peruser.json").write_text(json.dumps(per_user))
    return path


def test_q1_q2_as_preregistered(tmp_path, monkeypatch, capsys) -> None:
    mod = _module()
    path = _write(tmp_path)
    out = tmp_path / "sig.json"
    monkeypatch.setattr(sys, "argv", ["cold_significance.py", "--runs", f"x={path}", "--json", str(out)])
    assert mod.main() == 0
    res = json.loads(out.read_text())
    q1, q2 = res["tests"]
    assert res["means"]["x"]["best_non_gan"] == "ease-side"  # best on validation, although worst on test
    assert (q1["question"], q1["b"], q1["task"], q1["seeds"]) == ("Q1", "ease-side", "overall", [0, 1])
    assert q1["users"] == 41 and q1["diff"] == pytest.approx(0.05, abs=0.01) and q1["wilcoxon"]["p"] < 1e-6
    assert (q2["b"], q2["task"], q2["seeds"], q2["users"]) == ("gar-reg", "cold", [0], 40)
    assert q2["diff"] == pytest.approx(-0.15, abs=0.01)
    ps = sorted([q1["wilcoxon"]["p"], q2["wilcoxon"]["p"]])
    assert max(q1["holm_p"], q2["holm_p"]) == pytest.approx(ps[1])  # Holm over both tests
    assert min(q1["holm_p"], q2["holm_p"]) == pytest.approx(min(1.0, 2 * ps[0]))
    assert "Q1" in capsys.readouterr().out


def test_user_means_average_over_seeds() -> None:
    mod = _module()
    per_user = {"m/0": {"cold": {"users": [1, 2], "NDCG@20": [0.0, 1.0]}},
                "m/1": {"cold": {"users": [2, 3], "NDCG@20": [0.5, 0.25]}}}
    assert mod.user_means(per_user, "m", "cold", [0, 1]) == {1: 0.0, 2: 0.75, 3: 0.25}
