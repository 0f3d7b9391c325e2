"""benchmarks/synth_compare.py's merge of a one-generator rerun and synth_gan_select.py's rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(label: str, seed: int, tstr: float) -> dict:
    return {"label": label, "seed": seed, "tstr_ratio": tstr, "mia_auc": 0.5, "mia_auc_worst": 0.52}


def _split(seed: int, ndcg: float = 0.4) -> dict:
    return {"seed": seed, "data": "abc", "n_members": 4, "n_nonmembers": 2, "n_holdout": 2, "real_ndcg": {"ease": ndcg}}


def test_merge_replaces_only_the_rerun_generator():
    cmp = _bench("synth_compare")
    saved = {"seeds": [0, 1], "splits": [_split(0), _split(1)], "dataset": "d",
             "runs": [_run("gan", 0, 0.5), _run("bern", 0, 0.4), _run("gan", 1, 0.6), _run("bern", 1, 0.45)],
             "generators": [{"label": "gan", "name": "gan", "params": {}}, {"label": "bern", "name": "b", "params": {}}]}
    partial = {"seeds": [0, 1], "splits": [_split(0), _split(1)], "seconds": 3.0,
               "runs": [_run("gan", 0, 0.7), _run("gan", 1, 0.8)],
               "generators": [{"label": "gan", "name": "gan", "params": {"x": 1}}]}
    out = cmp.merge(partial, saved)
    assert [r["tstr_ratio"] for r in out["runs"]] == [0.7, 0.4, 0.8, 0.45]
    assert out["summary"]["gan"]["tstr_ratio"]["mean"] == pytest.approx(0.75)
    assert out["generators"][0]["params"] == {"x": 1} and out["reruns"][0]["labels"] == ["gan"]
    assert saved["runs"][0]["tstr_ratio"] == 0.5  # the input is not modified
    with pytest.raises(SystemExit, match="split differs"):
        cmp.merge(dict(partial, splits=[_split(0, ndcg=0.3), _split(1)]), saved)
    with pytest.raises(SystemExit, match="without a counterpart"):
        cmp.merge(dict(partial, runs=[_run("new", 0, 0.1)]), saved)


def test_selection_rule():
    sel = _bench("synth_gan_select")
    s = {"a": {"tstr": 0.80, "mia_auc": 0.60, "fit_cpu": 1}, "b": {"tstr": 0.70, "mia_auc": 0.54, "fit_cpu": 2},
         "c": {"tstr": 0.695, "mia_auc": 0.52, "fit_cpu": 3}}
    assert sel.choose(s) == "c"  # b and c within 0.01 of the best within 0.55: lower AUC wins
    s["c"]["tstr"] = 0.6
    assert sel.choose(s) == "b"
    none_within = {k: dict(v, mia_auc=v["mia_auc"] + 0.1) for k, v in s.items()}
    assert sel.choose(none_within) == "c"  # none within: the lowest AUC
