"""Optuna tuning: validation only, seeded and reproducible, resumable, time-boxed; `gan4rec tune` end to end."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

pytest.importorskip("optuna")

from gan4rec.cli import main
from gan4rec.data.split import Split, random_holdout
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.experiment import Protocol
from gan4rec.models import create
from gan4rec.train.loop import observe_validation
from gan4rec.tuning import tune, validation_carvings

SPACE = {"l2": {"type": "float", "low": 1.0, "high": 1e4, "log": True}}


@pytest.fixture(scope="module")
def split() -> Split:
    data = make_synthetic(300, 400, 9_000, random_state=1)
    return random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=42)


def test_tune_is_seeded_and_never_reads_test(split: Split) -> None:
    # Poisoning the test part proves tuning does not look at it: same result with and without.
    poisoned = Split(split.train, split.valid, None, {**split.spec, "poisoned": True})
    a = tune("ease", split, n_trials=4, search_space=SPACE, seed=0)
    b = tune("ease", poisoned, n_trials=4, search_space=SPACE, seed=0)
    assert a.best_params == b.best_params and a.best_value == b.best_value
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    c = tune("ease", split, n_trials=4, search_space=SPACE, seed=1)
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]
    # The best value is the best trial's validation metric.
    assert a.best_value == max(t["value"] for t in a.trials)
    assert 1.0 <= a.best_params["l2"] <= 1e4


def test_tune_resumes_from_storage_and_time_boxes(split: Split, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    first = tune("ease", split, n_trials=2, search_space=SPACE, storage=storage, seed=0)
    assert len(first.trials) == 2
    resumed = tune("ease", split, n_trials=5, search_space=SPACE, storage=storage, seed=0)
    assert len(resumed.trials) == 5
    assert [t["params"] for t in resumed.trials[:2]] == [t["params"] for t in first.trials]
    boxed = tune("ease", split, n_trials=10_000, search_space=SPACE, timeout=1.0, seed=0)
    assert 1 <= len(boxed.trials) < 10_000


def test_repeated_validation_averages_carvings_that_are_the_splits_of_the_next_seeds(split: Split) -> None:
    full = split.full_train()
    carvings = validation_carvings(split, 3)
    assert carvings[0] == (split.train, split.valid)
    for i, (train, valid) in enumerate(carvings[1:], start=1):
        assert train.same_space(split.train)
        assert train.nnz + valid.nnz == full.nnz and valid.nnz == split.valid.nnz
        assert valid.fingerprint() != split.valid.fingerprint()
    res = tune("ease", split, n_trials=3, search_space=SPACE, seed=0, valid_repeats=3)
    for t in res.trials:
        assert len(t["valid_repeats"]) == 3
        assert t["value"] == pytest.approx(float(np.mean(t["valid_repeats"])))
        # Each repeat's value is what that carving gives for the trial's params, by hand.
        model = create("ease", t["params"], random_state=0).fit(*carvings[2])
        by_hand = evaluate(model.score, carvings[2][0], carvings[2][1], ks=(20,)).metrics["NDCG@20"]
        assert t["valid_repeats"][2] == pytest.approx(by_hand)
    assert res.study_name.endswith("-x3")
    with pytest.raises(DataError, match="valid_repeats"):
        validation_carvings(split, 0)
    with pytest.raises(DataError, match="random validation holdout"):
        Protocol(split="leave-k-out", valid_repeats=2)


def test_epoch_based_trials_are_pruned_by_their_validation_curve(split: Split) -> None:
    # BPR-MF with learning rates from useless (1e-6) to good: the slow ones fall below the median of the
    # earlier trials at the same epoch and are abandoned; a pruned trial is never the best.
    space = {"lr": {"type": "float", "low": 1e-6, "high": 0.05, "log": True}}
    fixed = {"n_factors": 8, "epochs": 6, "eval_every": 2, "batch_size": 512, "device": "cpu"}
    res = tune("bpr", split, n_trials=12, search_space=space, fixed_params=fixed, seed=0)
    states = [t["state"] for t in res.trials]
    assert "PRUNED" in states and states.count("COMPLETE") >= 5
    best = max((t for t in res.trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
    assert res.best_params["lr"] == best["params"]["lr"] and res.best_value == best["value"]
    # Same study without pruning: every trial completes, and the pruned trials' params were sampled alike
    # up to the first pruning (TPE then sees different histories).
    plain = tune("bpr", split, n_trials=6, search_space=space, fixed_params=fixed, seed=0, prune=False)
    assert {t["state"] for t in plain.trials} == {"COMPLETE"}
    assert [t["params"] for t in plain.trials[:5]] == [t["params"] for t in res.trials[:5]]


def test_validation_observer_sees_only_its_own_loop(split: Split) -> None:
    seen: list[tuple[int, float]] = []
    model = create("bpr", {"n_factors": 4, "epochs": 4, "eval_every": 2, "device": "cpu"}, random_state=0)
    other = create("bpr", {"n_factors": 4, "epochs": 4, "eval_every": 2, "device": "cpu"}, random_state=0)
    with observe_validation(model, lambda e, v: seen.append((e, v))):
        other.fit(split.train, split.valid)
        assert seen == []
        model.fit(split.train, split.valid)
    assert [e for e, _ in seen] == [2, 4]
    assert [v for _, v in seen] == [row["valid_NDCG@20"] for row in model.history_ if "valid_NDCG@20" in row]


def test_tune_rejects_splits_without_validation_and_bad_args(split: Split) -> None:
    no_valid = Split(split.full_train(), None, split.test, {"kind": "none"})
    with pytest.raises(DataError, match="needs a validation split"):
        tune("ease", no_valid, n_trials=2)
    with pytest.raises(DataError, match="unknown model"):
        tune("nope", split, n_trials=2)
    with pytest.raises(DataError, match="has no parameter"):
        tune("ease", split, n_trials=2, fixed_params={"lambda": 3})
    with pytest.raises(DataError, match="NDCG@20"):
        tune("ease", split, n_trials=2, metric="NDCG")


def test_cli_tune_refits_per_seed_and_writes_config(tmp_path, capsys) -> None:
    out_json, cfg = tmp_path / "t.json", tmp_path / "ease.toml"
    code = main(["tune", "--model", "ease", "--trials", "3", "--seeds", "2", "--synthetic-size", "ml-100k",
                 "--json", str(out_json), "--save-config", str(cfg)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    res = json.loads(out_json.read_text())
    assert len(res["trials"]) == 3 and len(res["per_seed"]) == 2
    assert res["best_params"]["l2"] == res["params"]["l2"]
    mean = np.mean([r["metrics"]["test"]["NDCG@20"] for r in res["per_seed"]])
    assert res["metrics"]["test"]["NDCG@20"] == pytest.approx(mean)
    assert res["metrics"]["valid"]["NDCG@20"] == pytest.approx(res["tuning"]["best_value"])
    doc = tomllib.loads(cfg.read_text())
    assert doc["model"] == "ease" and doc["params"]["l2"] == res["best_params"]["l2"]
    # The committed-config path: train from the tuned config reproduces seed 0 without tuning.
    r0 = tmp_path / "r0.json"
    code = main(["train", "--config", str(cfg), "--synthetic-size", "ml-100k", "--seed", "0", "--json", str(r0)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(r0.read_text())["metrics"]["test"] == res["per_seed"][0]["metrics"]["test"]
