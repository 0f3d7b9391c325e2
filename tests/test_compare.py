"""gan4rec compare / demo end to end on tiny synthetic data: schema, significance, configs, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gan4rec.cli import main
from gan4rec.compare import (
    DEMO_MODELS,
    DEMO_TRIALS,
    compare,
    demo_experiment,
    experiment_toml,
)
from gan4rec.config import load_experiment
from gan4rec.errors import DataError, MissingInputError
from gan4rec.evaluation.significance import holm
from gan4rec.experiment import DataSpec, Protocol
from gan4rec.leaderboard import leaderboard_text

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_users": 120, "n_items": 150, "n_interactions": 3000, "random_state": 0}
MODELS = {"toppop": {}, "ease": {}, "bpr": {"epochs": 3, "eval_every": 1}}


@pytest.fixture(scope="module")
def result() -> dict:
    spec = DataSpec(dataset="synthetic", synthetic=dict(TINY))
    return compare(MODELS, spec, Protocol(), seeds=2, trials=2, description="tiny test run")


def test_result_follows_train_schema_per_model(result: dict) -> None:
    assert result["kind"] == "compare" and result["models"] == ["toppop", "ease", "bpr"]
    assert result["seeds"] == [0, 1] and result["trials"] == 2 and len(result["splits"]) == 1
    split = result["splits"][0]
    assert split["split_seed"] == 42 and len(split["fingerprint"]) == 64
    assert result["dataset"]["split_fingerprint"] == split["fingerprint"]
    for name, entry in result["results"].items():
        assert set(entry) >= {"model", "dataset", "protocol", "seed", "params", "refit_params", "fit_seconds",
                              "eval_seconds", "metrics", "versions", "per_seed", "recommend_seconds"}
        assert entry["model"] == name and entry["seed"] == [0, 1]
        runs = entry["per_seed"]
        assert [r["seed"] for r in runs] == [0, 1]
        for key in ("NDCG@20", "Recall@5", "Coverage@20"):
            values = [r["metrics"]["test"][key] for r in runs]
            assert entry["metrics"]["test"][key] == pytest.approx(np.mean(values))
            assert entry["metrics"]["test_std"][key] == pytest.approx(np.std(values, ddof=1))
        assert all(r["recommend_seconds"] > 0 and r["fit_seconds"] >= 0 for r in runs)
    # Deterministic models give the same test metrics for every seed; BPR's seeds differ.
    assert result["results"]["ease"]["metrics"]["test_std"]["NDCG@20"] == 0.0
    bpr = result["results"]["bpr"]["per_seed"]
    assert bpr[0]["metrics"]["test"]["NDCG@20"] != bpr[1]["metrics"]["test"]["NDCG@20"]
    json.dumps(result, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_tuning_budget_is_the_same_and_empty_spaces_are_not_tuned(result: dict) -> None:
    toppop = result["results"]["toppop"]["tuning"][0]
    assert toppop["tuned"] is False and toppop["reason"] == "empty search space" and toppop["trials"] == []
    for name in ("ease", "bpr"):
        t = result["results"][name]["tuning"][0]
        assert t["tuned"] is True and t["n_trials"] == 2 and len(t["trials"]) == 2
        # Fixed params are not searched and reach the final model.
    assert result["results"]["bpr"]["best_params"]["epochs"] == 3
    assert result["results"]["bpr"]["params"]["eval_every"] == 1


def test_leaderboard_and_significance(result: dict) -> None:
    board = result["leaderboard"]
    means = [row["mean"] for row in board]
    assert means == sorted(means, reverse=True) and board[0]["model"] == result["best"]
    assert [row["rank"] for row in board] == [1, 2, 3]
    best = result["best"]
    assert means[0] == max(e["metrics"]["test"]["NDCG@20"] for e in result["results"].values())
    sig = result["significance"]
    assert sig["best"] == best and sig["metric"] == "NDCG@20"
    n_users = sig["n_users"]
    assert n_users == result["dataset"]["n_users"] or 0 < n_users <= result["dataset"]["n_users"]
    others = [m for m in result["models"] if m != best]
    # Every per-user metric is tested; every p-value is stored, Holm over the models compared with the best.
    assert set(sig["tests"]) >= {"NDCG@20", "Recall@10", "MRR@5", "Precision@20"}
    for rows in sig["tests"].values():
        assert sorted(rows) == sorted(others)
        for test in ("wilcoxon", "ttest"):
            raw = [rows[m][test]["p"] for m in others]
            assert [rows[m][test]["p_holm"] for m in others] == pytest.approx(holm(raw).tolist())
            assert all(0 <= p <= 1 for p in raw)
        for m in others:
            r = rows[m]
            assert r["wins"] + r["ties"] + r["losses"] == n_users
            assert r["mean_diff"] == pytest.approx(r["mean_best"] - r["mean_model"])
    row = next(r for r in board if r["model"] != best)
    assert row["p_wilcoxon_holm"] == sig["tests"]["NDCG@20"][row["model"]]["wilcoxon"]["p_holm"]
    assert board[0]["p_wilcoxon_holm"] is None
    # The user-level means behind the tests agree with the leaderboard (one split: the same users).
    for entry in result["results"].values():
        ci = entry["user_ci95"]["NDCG@20"]
        assert ci["mean"] == pytest.approx(entry["metrics"]["test"]["NDCG@20"])
        assert ci["low"] <= ci["mean"] <= ci["high"]


def test_history_and_popularity(result: dict) -> None:
    hist = result["results"]["bpr"]["history"]
    assert hist["selection_key"] == "valid_NDCG@20" and [r["epoch"] for r in hist["fit"]] == [1, 2, 3]
    values = [r["valid_NDCG@20"] for r in hist["fit"]]
    assert hist["best_epoch"] == 1 + int(np.argmax(values))
    assert len(hist["refit"]) == hist["best_epoch"]  # refit on the full train for the chosen epoch count
    assert result["results"]["ease"]["history"] is None
    pop = result["popularity"]
    assert pop["k"] == 20 and sum(pop["train_share"]) == pytest.approx(1.0)
    assert pop["train_share"] == sorted(pop["train_share"], reverse=True)  # deciles, most popular first
    for entry in result["results"].values():
        p = entry["popularity"]
        assert sum(p["share"]) == pytest.approx(1.0)
        # The recommended lists are the evaluator's: the same coverage.
        assert p["coverage"] == pytest.approx(entry["metrics"]["test"]["Coverage@20"])
    # TopPop recommends only the head: no recommendation in the least popular half of the catalogue.
    assert sum(result["results"]["toppop"]["popularity"]["share"][5:]) == 0.0


def test_experiment_config_reproduces_the_run(result: dict, tmp_path: Path) -> None:
    cfg = tmp_path / "exp.toml"
    cfg.write_text(result["experiment_toml"])
    exp = load_experiment(cfg)
    assert exp["models"] == ["toppop", "ease", "bpr"] and exp["seeds"] == [0, 1] and exp["trials"] == 2
    assert exp["params"]["bpr"] == {"epochs": 3, "eval_every": 1}
    assert exp["data"]["synthetic"] == TINY
    assert exp["source"]["sha256"] and exp["source"]["text"] == result["experiment_toml"]
    # Re-running a model from the recorded config gives bit-identical test metrics.
    again = compare({"ease": exp["params"].get("ease", {})}, DataSpec(**exp["data"]), Protocol(**exp["protocol"]),
                    seeds=[0], trials=exp["trials"], config=exp["source"])
    assert again["config"]["path"] == str(cfg)
    assert again["results"]["ease"]["per_seed"][0]["metrics"]["test"] == \
        result["results"]["ease"]["per_seed"][0]["metrics"]["test"]
    assert again["splits"][0]["fingerprint"] == result["splits"][0]["fingerprint"]
    assert again["significance"]["tests"] == {m: {} for m in again["significance"]["tests"]}


def test_several_splits_and_explicit_seeds() -> None:
    spec = DataSpec(dataset="synthetic", synthetic=dict(TINY))
    res = compare(["toppop", "itemknn"], spec, Protocol(ks=(10,), metric="Recall@10"), seeds=[3], trials=0,
                  splits=2)
    assert [s["split_seed"] for s in res["splits"]] == [42, 43]
    assert res["splits"][0]["fingerprint"] != res["splits"][1]["fingerprint"]
    assert res["results"]["itemknn"]["n_runs"] == 2 and res["seeds"] == [3]
    assert res["protocol"]["ks"] == [10] and res["metric"] == "Recall@10"
    assert res["results"]["itemknn"]["tuning"][0]["reason"] == "trials=0"
    assert "test Recall@10, mean +- sample std over 2 runs (seed 3 x 2 split(s))" in leaderboard_text(res)


def test_bad_arguments_raise_data_errors() -> None:
    spec = DataSpec(dataset="synthetic", synthetic=dict(TINY))
    with pytest.raises(DataError, match="unknown model 'nope'"):
        compare(["nope", "toppop"], spec, Protocol(), seeds=1, trials=0)
    with pytest.raises(DataError, match="seeds=0"):
        compare(["toppop"], spec, Protocol(), seeds=0, trials=0)
    with pytest.raises(DataError, match="lists a model twice"):
        compare(["toppop", "toppop"], spec, Protocol(), seeds=1, trials=0)
    with pytest.raises(DataError, match="valid_frac=0"):
        compare(["ease"], spec, Protocol(valid_frac=0.0), seeds=1, trials=3)
    with pytest.raises(DataError, match="temporal"):
        compare(["toppop"], spec, Protocol(split="temporal"), seeds=1, trials=0, splits=2)
    with pytest.raises(DataError, match="has no parameter 'bogus'"):
        compare({"ease": {"bogus": 1}}, spec, Protocol(), seeds=1, trials=0)
    with pytest.raises(DataError, match="none of the models"):
        compare(["nope"], spec, Protocol(), seeds=1, trials=0, skip_missing=True)


def test_missing_models_are_skipped_when_asked() -> None:
    spec = DataSpec(dataset="synthetic", synthetic=dict(TINY))
    res = compare(["no-such-gan", "toppop"], spec, Protocol(), seeds=1, trials=0, skip_missing=True)
    assert res["skipped"] == {"no-such-gan": "not in this build"} and res["models"] == ["toppop"]
    assert "skipped: no-such-gan (not in this build)" in leaderboard_text(res)


def test_load_experiment_checks_and_merges_model_configs(tmp_path: Path) -> None:
    model_cfg = tmp_path / "ease.toml"
    model_cfg.write_text('model = "ease"\n[params]\nl2 = 10.0\n')
    exp = tmp_path / "exp.toml"
    exp.write_text(f'models = ["ease"]\nseeds = [1, 2]\n[model_configs]\nease = "{model_cfg}"\n'
                   '[params.ease]\nl2 = 20.0\n[protocol]\nks = [10]\nmetric = "NDCG@10"\n')
    loaded = load_experiment(exp)
    assert loaded["params"] == {"ease": {"l2": 20.0}} and loaded["seeds"] == [1, 2]
    assert loaded["protocol"] == {"ks": (10,), "metric": "NDCG@10"}
    bad = tmp_path / "bad.toml"
    bad.write_text('models = ["ease"]\nseed = 3\n')
    with pytest.raises(DataError, match=r"bad\.toml: unknown key 'seed'"):
        load_experiment(bad)
    bad.write_text("trials = -1\n")
    with pytest.raises(DataError, match=r"trials = -1; expected an integer >= 0"):
        load_experiment(bad)
    bad.write_text("[data]\nfile = 'x.csv'\n")
    with pytest.raises(DataError, match="unknown data key 'file'"):
        load_experiment(bad)
    bad.write_text("models = [\n")
    with pytest.raises(DataError, match="invalid TOML"):
        load_experiment(bad)
    with pytest.raises(MissingInputError, match="no such experiment config"):
        load_experiment(tmp_path / "absent.toml")


def test_shipped_configs_load_and_demo_config_matches_the_demo() -> None:
    demo = load_experiment(ROOT / "configs" / "experiments" / "demo.toml")
    demo.pop("source")
    assert demo == demo_experiment()
    assert tuple(demo["models"]) == DEMO_MODELS
    ml = load_experiment(ROOT / "configs" / "experiments" / "ml100k.toml")
    assert ml["data"]["train"] == "../shared/datasets/cfgan-ml100k/ML100K.train" and ml["data"]["format"] == "uir"
    assert "cfgan" in ml["models"] and ml["seeds"] >= 3
    text = experiment_toml({"models": ["bpr"], "seeds": [0], "trials": 0, "splits": 1, "data": {},
                            "protocol": {"metric": "NDCG@20"}, "params": {"bpr": {"patience": None, "epochs": 2}}})
    assert text.startswith("# gan4rec experiment config")
    assert "WARNING: params.bpr.patience = None has no TOML form" in text and "epochs = 2" in text


def test_cli_compare_with_config_writes_report_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "exp.toml"
    cfg.write_text('description = "cli run"\nmodels = ["toppop", "itemknn"]\nseeds = 1\ntrials = 1\n'
                   "[data]\ndataset = 'synthetic'\n[data.synthetic]\n"
                   "n_users = 80\nn_items = 100\nn_interactions = 1500\n")
    out, js = tmp_path / "out", tmp_path / "r.json"
    code = main(["-q", "compare", "--config", str(cfg), "--report", str(out), "--json", str(js)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "leaderboard: test NDCG@20" in stdout and f"report: {out / 'report.html'}" in stdout
    assert "vs toppop" in stdout or "vs itemknn" in stdout
    res = json.loads(js.read_text())
    assert res["config"]["path"] == str(cfg) and res["description"] == "cli run"
    assert (out / "report.html").is_file() and (out / "experiment.toml").is_file()
    assert json.loads((out / "results.json").read_text())["best"] == res["best"]
    # --models overrides the config's list; a bad count is a usage error (exit 2).
    assert main(["-q", "compare", "--config", str(cfg), "--models", "toppop", "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    assert main(["-q", "compare", "--models", "nope", "--config", str(cfg)]) == 65
    assert "unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "seeds"), [("0,2", [0, 2]), ("3,", [3]), ("2", [0, 1])])
def test_cli_compare_seeds_takes_a_count_or_a_list(flag: str, seeds: list[int], tmp_path: Path) -> None:
    """``--seeds`` takes what the config's ``seeds`` key takes: a count N (0..N-1) or the seeds themselves."""
    cfg = tmp_path / "exp.toml"
    cfg.write_text('models = ["toppop"]\nseeds = 5\ntrials = 0\n[data]\ndataset = "synthetic"\n[data.synthetic]\n'
                   "n_users = 60\nn_items = 80\nn_interactions = 900\n")
    js = tmp_path / "r.json"
    assert main(["-q", "compare", "--config", str(cfg), "--seeds", flag, "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    assert res["seeds"] == seeds  # the flag overrides the config's 5
    assert sorted(r["seed"] for r in res["results"]["toppop"]["per_seed"]) == seeds


def test_cli_demo_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(["-q", "demo", "--users", "60", "--items", "80", "--report", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "synthetic dataset, 60 users x 80 items, 300 interactions" in stdout
    assert "leaderboard: test NDCG@20" in stdout and f"report: {out / 'report.html'}" in stdout
    from gan4rec.models import MODELS

    for name in DEMO_MODELS:
        if name not in MODELS:
            assert f"{name} (not in this build)" in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["models"] == [m for m in DEMO_MODELS if m in MODELS]
    assert res["experiment"]["trials"] == DEMO_TRIALS and res["experiment"]["seeds"] == [0]
    # stdout states the trials each model actually got.
    got = {n: sum(t["n_trials"] for t in res["results"][n]["tuning"]) for n in res["models"]}
    assert "tuning on validation: " + ", ".join(
        f"{n} {got[n]}/{DEMO_TRIALS} trials" if n != "toppop" else "toppop not tuned (empty search space)"
        for n in res["models"]) in stdout


@pytest.mark.slow
def test_acceptance_cfgan_split_ease_vs_toppop(cfgan_split, tmp_path: Path, capsys) -> None:
    """Issue 6 acceptance (with the models of this build): per-user significance on the CFGAN ML-100K split."""
    train, test = cfgan_split
    out = tmp_path / "out"
    code = main(["-q", "compare", "--models", "ease,toppop", "--train", str(train), "--test", str(test),
                 "--format", "uir", "--seeds", "3", "--trials", "10", "--report", str(out),
                 "--json", str(out / "r.json")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "r.json").read_text())
    assert res["best"] == "ease" and res["significance"]["n_users"] == 943
    t = res["significance"]["tests"]["NDCG@20"]["toppop"]
    assert t["wilcoxon"]["p_holm"] < 1e-10 and t["ttest"]["p_holm"] < 1e-10
    assert abs(res["results"]["toppop"]["metrics"]["test"]["NDCG@20"] - 0.213) <= 0.002
    assert math.isclose(res["results"]["ease"]["metrics"]["test_std"]["NDCG@20"], 0.0, abs_tol=1e-12)
