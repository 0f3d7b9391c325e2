"""`gan4rec compare --split cold-items`: tuned on the cold objective (validation only), three tasks, per-task
leaderboard and significance, "cannot" for the cold task of a pure CF model, report and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gan4rec.compare as compare_mod
from gan4rec.compare import compare, leaderboard_text
from gan4rec.data.split import ColdSplit
from gan4rec.experiment import DataSpec, Protocol, cold_objective_value
from gan4rec.models import MODELS as REGISTRY

pytest.importorskip("optuna")

TASKS = ["warm", "cold", "overall"]
# Small synthetic data with the multi-hot `genres` item feature; 20% of 250 items are cold.
SYNTH = {"n_users": 150, "n_items": 250, "n_interactions": 5000, "random_state": 0}
IALS = {"n_factors": 8, "iterations": 3}
# Two CF models (toppop has nothing to tune) and two hybrids, so every task has a significance test.
MODELS: dict[str, dict[str, Any]] = {
    "toppop": {}, "ials": IALS, "content-knn": {},
    "ridge-map": {"backbone": "ials", "backbone_params": IALS},
}


def _compare(**kw: Any) -> dict[str, Any]:
    return compare(MODELS, DataSpec(synthetic=SYNTH), Protocol(split="cold-items"), seeds=2, trials=2, **kw)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return _compare()


def _half_of_test(split: ColdSplit) -> ColdSplit:
    """The same split with a random half of its test interactions dropped: what tuning reads must not change."""
    assert split.test is not None
    keep = np.random.default_rng(1).random(split.test.nnz) < 0.5
    spec = {k: v for k, v in split.spec.items() if k != "items"}
    return ColdSplit.build(split.train, split.valid, split.test.subset(keep),
                           cold_valid_items=split.cold_valid_items, cold_test_items=split.cold_test_items, spec=spec)


def test_three_tasks_with_mean_and_std_and_cannot_for_cf(result: dict[str, Any]) -> None:
    assert result["tasks"] == TASKS
    assert set(result["leaderboard"]) == set(result["best"]) == set(result["significance"]) == set(TASKS)
    for name in MODELS:
        test, std = result["results"][name]["metrics"]["test"], result["results"][name]["metrics"]["test_std"]
        assert list(test) == TASKS
        cf = name in ("toppop", "ials")
        assert result["results"][name]["cold_start"] is not cf
        assert (test["cold"] is None) is cf and (std["cold"] is None) is cf
        for task in ("warm", "overall") if cf else TASKS:
            assert 0 < test[task]["NDCG@20"] <= 1 and std[task]["NDCG@20"] >= 0
    for task in TASKS:
        rows = {r["model"]: r for r in result["leaderboard"][task]}
        assert set(rows) == set(MODELS)
        for name, row in rows.items():
            if task == "cold" and name in ("toppop", "ials"):
                assert row["cannot"] and row["mean"] is None and row["metrics"] is None and row["rank"] is None
                continue
            assert set(row["metrics"]) == {"NDCG@20", "Precision@20", "Recall@20"}
            entry = result["results"][name]["metrics"]
            assert row["metrics"]["Recall@20"] == {"mean": entry["test"][task]["Recall@20"],
                                                   "std": entry["test_std"][task]["Recall@20"]}
        ranked = [r["mean"] for r in result["leaderboard"][task] if not r["cannot"]]
        assert ranked == sorted(ranked, reverse=True) and result["leaderboard"][task][0]["is_best"]
    assert result["best"]["cold"] in ("content-knn", "ridge-map")
    assert result["popularity"] is None


def test_significance_per_task_among_its_models(result: dict[str, Any]) -> None:
    from gan4rec.evaluation.significance import holm

    n_users = {}
    for task in TASKS:
        sig = result["significance"][task]
        best = result["best"][task]
        assert sig["task"] == task and sig["best"] == best
        tests = sig["tests"]["NDCG@20"]
        able = [n for n in MODELS if result["results"][n]["metrics"]["test"][task] is not None]
        assert set(tests) == set(able) - {best}  # a CF model is not tested on the cold task
        # Holm within the task: over the models compared with the task's best.
        names = list(tests)
        adjusted = holm([tests[n]["wilcoxon"]["p"] for n in names])
        assert [tests[n]["wilcoxon"]["p_holm"] for n in names] == pytest.approx(adjusted.tolist())
        # Per-user values averaged over the seeds: their mean is the mean test metric over the runs.
        for name in names:
            mean = result["results"][name]["metrics"]["test"][task]["NDCG@20"]
            assert tests[name]["mean_model"] == pytest.approx(mean, abs=1e-9)
        n_users[task] = sig["n_users"]
        for name in able:
            assert result["results"][name]["user_ci95"][task]["NDCG@20"]["n_users"] == sig["n_users"]
    assert n_users["warm"] != n_users["cold"]  # each task has its own users


def test_tuned_on_the_cold_objective(result: dict[str, Any]) -> None:
    """Each trial's value is the mean of its validation warm and cold NDCG@20 for a hybrid, the warm one for
    CF; for CF it is also the validation objective of the run that reused the best trial's fit. (A hybrid's
    run is calibrated afterwards, which also moves its warm items that have no training interaction.)"""
    for name in ("ials", "content-knn", "ridge-map"):
        entry = result["results"][name]
        tuned = entry["tuning"][0]
        assert tuned["tuned"] and tuned["reused_best_fit"]
        for trial in tuned["trials"]:
            valid = trial["valid_metrics"]
            if name == "ials":
                assert valid["cold"] is None and trial["value"] == valid["warm"]["NDCG@20"]
            else:
                assert trial["value"] == pytest.approx((valid["warm"]["NDCG@20"] + valid["cold"]["NDCG@20"]) / 2)
        valid = entry["per_seed"][0]["metrics"]["valid"]
        assert entry["per_seed"][0]["valid_objective"] == cold_objective_value(valid, "NDCG@20")
    ials = result["results"]["ials"]
    assert ials["tuning"][0]["best_value"] == ials["per_seed"][0]["metrics"]["valid"]["warm"]["NDCG@20"]
    assert cold_objective_value({"warm": {"NDCG@20": 0.2}, "cold": {"NDCG@20": 0.4}}, "NDCG@20") == pytest.approx(0.3)
    assert cold_objective_value({"warm": {"NDCG@20": 0.2}, "cold": None}, "NDCG@20") == 0.2


def test_choices_never_read_test(result: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Half of the test part dropped: the same tuning trials, values and chosen params, other test metrics."""
    real = compare_mod.load_split

    def half_test(spec: DataSpec, proto: Protocol) -> tuple[ColdSplit, dict[str, Any]]:
        split, info = real(spec, proto)
        return _half_of_test(split), info  # type: ignore[arg-type]

    monkeypatch.setattr(compare_mod, "load_split", half_test)
    other = _compare()
    changed = False
    for name in MODELS:
        a, b = result["results"][name], other["results"][name]
        assert a["best_params"] == b["best_params"]
        assert [t["value"] for t in a["tuning"][0]["trials"]] == [t["value"] for t in b["tuning"][0]["trials"]]
        assert a["tuning"][0]["best_value"] == b["tuning"][0]["best_value"]
        assert [r["metrics"]["valid"] for r in a["per_seed"]] == [r["metrics"]["valid"] for r in b["per_seed"]]
        changed |= a["metrics"]["test"]["overall"] != b["metrics"]["test"]["overall"]
    assert changed


def test_tune_uses_the_cold_objective_and_ignores_test() -> None:
    from gan4rec.experiment import load_split
    from gan4rec.tuning import tune

    split, _ = load_split(DataSpec(synthetic=SYNTH), Protocol(split="cold-items"))
    assert isinstance(split, ColdSplit)
    runs = [tune("content-knn", s, n_trials=3, seed=0) for s in (split, _half_of_test(split))]
    assert runs[0].best_params == runs[1].best_params and runs[0].best_value == runs[1].best_value
    for t in runs[0].trials:
        valid = t["valid_metrics"]
        assert set(valid) == {"warm", "cold"}
        assert t["value"] == pytest.approx((valid["warm"]["NDCG@20"] + valid["cold"]["NDCG@20"]) / 2)


def test_json_round_trip_and_report(result: dict[str, Any], tmp_path: Path) -> None:
    from gan4rec.report import write_report
    from gan4rec.report.html import render_html

    back = json.loads(json.dumps(result, allow_nan=False))
    assert back == result
    assert render_html(back) == render_html(result)
    page = write_report(back, tmp_path / "report").read_text(encoding="utf-8")
    for task in TASKS:
        assert f"{task} task" in page
    assert "cannot" in page and "Significance by task" in page
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert "id='task-bars'" in page  # the one figure of a cold-start report: the metric by task
    assert json.loads((tmp_path / "report" / "results.json").read_text()) == result
    text = leaderboard_text(back)
    for task in TASKS:
        assert f"{task} task (" in text
    assert "cannot score cold items" in text


def test_cli_compare_cold_items_from_flags_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gan4rec.cli import main

    cfg = tmp_path / "exp.toml"
    cfg.write_text('models = ["toppop", "content-knn"]\nseeds = 1\ntrials = 1\ndefaults_first = true\n'
                   '[data.synthetic]\nn_users = 150\nn_items = 250\nn_interactions = 5000\nrandom_state = 0\n'
                   '[protocol]\nsplit = "cold-items"\n', encoding="utf-8")
    out = tmp_path / "r.json"
    assert main(["-q", "compare", "--config", str(cfg), "--json", str(out), "--report", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    for task in TASKS:
        assert f"{task} task (" in printed
    res = json.loads(out.read_text())
    assert res["protocol"]["split"] == "cold-items" and res["results"]["toppop"]["metrics"]["test"]["cold"] is None
    assert "cold task" in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    # defaults_first: the one trial is content-knn's defaults, and the effective config says so.
    first = res["results"]["content-knn"]["tuning"][0]["trials"][0]
    defaults = REGISTRY["content-knn"].default_params()
    assert first["defaults"] is True and first["params"]["k"] == defaults["k"]
    assert res["experiment"]["defaults_first"] is True and "defaults_first = true" in res["experiment_toml"]
    assert main(["-q", "compare", "--models", "toppop,content-knn", "--split", "cold-items", "--trials", "1",
                 "--seeds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "overall task (" in printed and "cannot" in printed


def test_cli_tune_cold_items(capsys: pytest.CaptureFixture[str]) -> None:
    from gan4rec.cli import main

    assert main(["-q", "tune", "--model", "content-knn", "--split", "cold-items", "--trials", "2", "--seeds", "2",
                 "--defaults-first"]) == 0
    printed = capsys.readouterr().out
    assert "cold objective" in printed and "seed 1: test NDCG@20 = warm " in printed


def test_no_model_can_rank_the_cold_task(tmp_path: Path) -> None:
    """Only CF models: the cold task has no best model and no test, and still renders as "cannot"."""
    from gan4rec.report import write_report

    res = compare(["toppop"], DataSpec(synthetic=SYNTH), Protocol(split="cold-items"), seeds=1, trials=0)
    assert res["best"] == {"warm": "toppop", "cold": None, "overall": "toppop"}
    assert res["significance"]["cold"] is None and res["leaderboard"]["cold"][0]["cannot"]
    assert "no model can rank this task" in leaderboard_text(res)
    assert "no model can rank it" in write_report(res, tmp_path).read_text(encoding="utf-8")


def test_pre_split_files_cannot_be_split_by_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gan4rec.cli import main

    rows = [(u, i) for u in range(12) for i in range(u % 5, u % 5 + 6)]
    for name, part in (("train", rows[::2]), ("test", rows[1::2])):
        (tmp_path / f"{name}.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in part))
    code = main(["-q", "compare", "--models", "toppop", "--train", str(tmp_path / "train.csv"), "--test",
                 str(tmp_path / "test.csv"), "--split", "cold-items", "--trials", "0", "--seeds", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 65 and "cold-items" in err and len(err.splitlines()) == 1
