"""Tuning keeps its word: the time box stops running fits, a resumed study continues, records say what ran."""

from __future__ import annotations

import tomllib

import pytest

optuna = pytest.importorskip("optuna")

from gan4rec import tuning
from gan4rec.config import load_config, load_experiment
from gan4rec.data.split import Split, presplit, random_holdout
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.experiment import DataSpec, Protocol, run_on_split
from gan4rec.models import MODELS
from gan4rec.tuning import TimeBoxError, tune, tuned_config, tuned_config_toml

SPACE = {"l2": {"type": "float", "low": 1.0, "high": 1e4, "log": True},
         "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
BPR = {"epochs": 6, "eval_every": 1, "patience": 10, "n_factors": 8}


@pytest.fixture(scope="module")
def split() -> Split:
    data = make_synthetic(120, 150, 3_000, random_state=1)
    return random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=42)


class _Clock:
    """A fake ``time`` for gan4rec.tuning: every reading advances it by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.t += self.step
        return self.t


def test_a_resumed_seeded_study_never_repeats_a_trials_params(split: Split, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    first = tune("bpr", split, n_trials=4, search_space=SPACE, fixed_params={"epochs": 2}, storage=storage, seed=0,
                 prune=False)
    resumed = tune("bpr", split, n_trials=8, search_space=SPACE, fixed_params={"epochs": 2}, storage=storage,
                   seed=0, prune=False)
    assert resumed.n_run == 4 and len(resumed.trials) == 8
    assert [t["params"] for t in resumed.trials[:4]] == [t["params"] for t in first.trials]
    params = [tuple(sorted(t["params"].items())) for t in resumed.trials]
    assert len(set(params)) == 8, "the resumed study replayed earlier trials"
    assert "8 trial(s) in the study" not in resumed.summary() and "(8 in the study)" in resumed.summary()


def test_a_running_epoch_trial_is_stopped_at_the_time_box(split: Split, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each clock reading is 1 s (a trial of 6 epochs reads it about 10 times): a 2.5 s box passes inside
    # the first fit, which stops at its next validation; a 15 s box lets the first trial finish.
    monkeypatch.setattr(tuning, "time", _Clock(1.0))
    with pytest.raises(TimeBoxError, match="time box stopped tuning 'bpr'") as err:
        tune("bpr", split, n_trials=3, search_space=SPACE, fixed_params=BPR, timeout=2.5, seed=0)
    assert err.value.n_run == 1 and err.value.n_time_boxed == 1  # stopped mid-fit, and no trial after it
    assert isinstance(err.value, DataError)

    # With a box that lets the first trial finish, the rest are cut: the record says so.
    clock = _Clock(1.0)
    monkeypatch.setattr(tuning, "time", clock)
    res = tune("bpr", split, n_trials=5, search_space=SPACE, fixed_params=BPR, timeout=15.0, seed=0, prune=False)
    states = [(t["state"], t.get("stopped")) for t in res.trials]
    assert states[0] == ("COMPLETE", None)
    assert res.time_boxed and res.n_run == len(res.trials) < 5
    assert res.n_time_boxed == sum(s == ("PRUNED", "time box") for s in states)
    assert res.n_complete == sum(s[0] == "COMPLETE" for s in states)
    assert f"{res.n_run} trial(s) run" in res.summary() and "the time box stopped the search" in res.summary()


def test_the_best_trials_fit_is_reused_for_its_seed_bit_identically(split: Split) -> None:
    res = tune("bpr", split, n_trials=2, search_space=SPACE, fixed_params=BPR, seed=0)
    assert res.best_model is not None
    proto = Protocol(metric="NDCG@20", ks=(20,))
    info = {"n_users": split.train.n_users}
    reused = run_on_split("bpr", res.best_params, split, info, proto, seed=0, fitted=res.best_model,
                          fitted_seconds=res.best_fit_seconds)
    fresh = run_on_split("bpr", res.best_params, split, info, proto, seed=0)
    assert reused.result["metrics"] == fresh.result["metrics"]
    assert reused.result["refit_params"] == fresh.result["refit_params"]


def test_published_configs_run_first_and_once(split: Split, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = MODELS["ease"]
    published = ({"l2": 123.0}, {"l2": 1e9}, {"l2": 50.0})  # 1e9 lies outside SPACE's l2 range
    monkeypatch.setattr(cls, "published_configs", published)
    storage = f"sqlite:///{tmp_path / 'pub.db'}"
    space = {"l2": SPACE["l2"]}
    first = tune("ease", split, n_trials=2, search_space=space, storage=storage, seed=0)
    assert [t["params"]["l2"] for t in first.trials] == [123.0, 1e9]
    assert [t["published"] for t in first.trials] == [{"l2": 123.0}, {"l2": 1e9}]
    resumed = tune("ease", split, n_trials=4, search_space=space, storage=storage, seed=0)
    l2s = [t["params"]["l2"] for t in resumed.trials]
    assert l2s[:3] == [123.0, 1e9, 50.0] and l2s.count(123.0) == 1 and l2s.count(1e9) == 1
    # Fixed params win over a published config; published=False leaves them out.
    fixed = tune("ease", split, n_trials=1, search_space=space, fixed_params={"l2": 7.0}, seed=0)
    assert fixed.best_params == {"l2": 7.0}
    plain = tune("ease", split, n_trials=1, search_space=space, published=False, seed=0)
    assert "published" not in plain.trials[0]


def test_defaults_first_runs_the_defaults_once_before_published_configs(split: Split, tmp_path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cls = MODELS["ease"]
    monkeypatch.setattr(cls, "published_configs", ({"l2": 123.0},))
    space = {"l2": SPACE["l2"]}
    storage = f"sqlite:///{tmp_path / 'defaults.db'}"
    first = tune("ease", split, n_trials=2, search_space=space, storage=storage, defaults_first=True, seed=0)
    # The default l2 (500) first, then the published config, then draws.
    assert [t["params"]["l2"] for t in first.trials] == [cls.default_params()["l2"], 123.0]
    assert first.trials[0].get("defaults") is True and "defaults" not in first.trials[1]
    resumed = tune("ease", split, n_trials=4, search_space=space, storage=storage, defaults_first=True, seed=0)
    assert sum(bool(t.get("defaults")) for t in resumed.trials) == 1 and len(resumed.trials) == 4
    # Budget 1: the defaults only. A default outside the space is drawn instead; fixed params stay fixed.
    one = tune("ease", split, n_trials=1, search_space=space, defaults_first=True, seed=0)
    assert [t["params"]["l2"] for t in one.trials] == [500.0]
    narrow = {"l2": {"type": "float", "low": 1.0, "high": 10.0}}
    drawn = tune("ease", split, n_trials=1, search_space=narrow, published=False, defaults_first=True, seed=0)
    assert 1.0 <= drawn.trials[0]["params"]["l2"] <= 10.0 and drawn.trials[0]["defaults"] is True
    assert tuning.defaults_in_space({"k": {"type": "categorical", "choices": [1, 2]}, "l2": narrow["l2"]},
                                    {"k": 2, "l2": 500.0}) == {"k": 2}
    # The config key and its check.
    cfg = tmp_path / "exp.toml"
    cfg.write_text('models = ["ease"]\ndefaults_first = true\n')
    assert load_experiment(cfg)["defaults_first"] is True
    cfg.write_text('models = ["ease"]\ndefaults_first = 1\n')
    with pytest.raises(DataError, match="defaults_first"):
        load_experiment(cfg)


def test_wide_space_is_used_when_declared(split: Split, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="declares no wide search space"):
        tune("ease", split, n_trials=1, wide=True)
    monkeypatch.setattr(MODELS["ease"], "search_space_wide", {"l2": {"type": "float", "low": 2e4, "high": 3e4}},
                        raising=False)
    res = tune("ease", split, n_trials=2, wide=True, seed=0)
    assert all(2e4 <= t["params"]["l2"] <= 3e4 for t in res.trials)
    assert res.search_space == {"l2": {"type": "float", "low": 2e4, "high": 3e4}}


def test_saved_config_records_the_trials_run_and_the_real_split(split: Split, tmp_path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "time", _Clock(1.0))
    res = tune("ease", split, n_trials=20, search_space={"l2": SPACE["l2"]}, timeout=12.0, seed=0)
    assert res.time_boxed and res.n_run < 20
    cfg = tuned_config(res, split, DataSpec(), Protocol())
    assert f"{res.n_run} trial(s) run" in cfg["description"] and f"at {res.n_run} of 20" in cfg["description"]
    assert "20 trials" not in cfg["description"]
    assert cfg["data"] == {} and cfg["protocol"]["split"] == "random" and cfg["protocol"]["test_frac"] == 0.2

    # Pre-split files: no split kind or test fraction that did not happen; [data] names the files.
    pre = presplit(split.full_train(), split.test, valid_frac=0.2, random_state=42)
    res = tune("ease", pre, n_trials=2, search_space={"l2": SPACE["l2"]}, seed=0)
    spec = DataSpec(train="tr.tsv", test="te.tsv", format="uir")
    cfg = tuned_config(res, pre, spec, Protocol())
    assert "split" not in cfg["protocol"] and "test_frac" not in cfg["protocol"]
    assert "pre-split train/test files" in cfg["description"] and "2 trial(s) run" in cfg["description"]
    path = tmp_path / "tuned.toml"
    path.write_text(tuned_config_toml(cfg))
    doc = tomllib.loads(path.read_text())
    assert doc["data"] == {"train": "tr.tsv", "test": "te.tsv", "format": "uir"}
    assert load_config(path)["params"] == res.best_params  # train --config can read it back


def test_refit_and_test_reuses_the_best_fit_and_reports_the_sample_std(split: Split) -> None:
    from gan4rec.tuning import refit_and_test

    res = tune("bpr", split, n_trials=2, search_space=SPACE, fixed_params=BPR, seed=0)
    info = {"n_users": split.train.n_users}
    out = refit_and_test(res, split, info, Protocol(), seeds=3)
    values = [r["metrics"]["test"]["NDCG@20"] for r in out["per_seed"]]
    mean = sum(values) / 3
    sample_std = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
    assert out["metrics"]["test_std"]["NDCG@20"] == pytest.approx(sample_std)
    assert out["std"].startswith("sample (ddof=1)") and out["tuning"]["n_run"] == 2
    fresh = run_on_split("bpr", res.best_params, split, info, Protocol(), seed=0)
    assert out["per_seed"][0]["metrics"] == fresh.result["metrics"]
