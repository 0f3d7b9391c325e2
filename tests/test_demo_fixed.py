"""`gan4rec demo` is the same on every machine: a fixed trial count decides the search, not the clock."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("optuna")

from gan4rec import tuning
from gan4rec.compare import DEMO_TRIALS, compare, demo_experiment
from gan4rec.experiment import DataSpec, Protocol
from gan4rec.leaderboard import leaderboard_text, tuning_lines
from gan4rec.models import MODELS


def _demo(**overrides: Any) -> dict[str, Any]:
    """The demo's comparison, as `gan4rec demo --users 60 --items 80` runs it."""
    size = overrides.pop("size", (60, 80))
    exp = {**demo_experiment(n_users=size[0], n_items=size[1]), **overrides}
    models = {m: dict(exp["params"].get(m, {})) for m in exp["models"]}
    return compare(models, DataSpec(**exp["data"]), Protocol(**exp["protocol"]), seeds=exp["seeds"],
                   trials=exp["trials"], splits=exp["splits"], timeout_per_model=exp["timeout_per_model"],
                   skip_missing=True, description=exp["description"], search_spaces=exp["search_space"])


class _Clock:
    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return _demo()


def test_every_tuned_model_gets_the_fixed_trial_count_in_its_small_space(demo: dict[str, Any]) -> None:
    exp = demo_experiment()
    for name in demo["models"]:
        t = demo["results"][name]["tuning"][0]
        if name == "toppop":
            assert t["tuned"] is False
            continue
        assert t["n_trials"] == DEMO_TRIALS and not t["timed_out"], name
        space = exp["search_space"][name]
        assert t["search_space"] == space and all(set(tr["params"]) == set(space) for tr in t["trials"])
    line = tuning_lines(demo)[0]
    assert line.startswith("tuning on validation: ") and "WARNING" not in leaderboard_text(demo)
    assert demo["experiment"]["search_space"] == exp["search_space"]


def test_the_leaderboard_is_identical_across_two_demo_runs(demo: dict[str, Any]) -> None:
    again = _demo()
    keys = ("rank", "model", "mean", "std", "ci95", "p_wilcoxon_holm", "p_ttest_holm")
    assert [{k: r[k] for k in keys} for r in again["leaderboard"]] == [{k: r[k] for k in keys} for r in demo["leaderboard"]]
    assert {n: e["best_params"] for n, e in again["results"].items()} == {
        n: e["best_params"] for n, e in demo["results"].items()}


def test_the_time_box_guard_reports_what_it_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every clock reading in gan4rec.tuning is 1 s, so the 5 s box cuts each model's search short: its
    # epoch fits stop at a validation, and no trial starts after the box.
    monkeypatch.setattr(tuning, "time", _Clock(1.0))
    res = _demo(timeout_per_model=5.0)
    lines = tuning_lines(res)
    text = leaderboard_text(res)
    cut = 0
    for name in res["models"]:
        t = res["results"][name]["tuning"][0]
        if name == "toppop":
            assert "toppop not tuned (empty search space)" in lines[0]
            continue
        boxed = sum(tr.get("stopped") == "time box" for tr in t["trials"])
        ran = len(t["trials"]) - boxed if t["tuned"] else t["n_trials"] - t["n_time_boxed"]
        assert f"{name} {ran}/{DEMO_TRIALS} trials" in lines[0]
        if t["timed_out"]:
            cut += 1
            warning = next(line for line in lines if line.startswith(f"WARNING: the 5 s tuning time box cut {name} "))
            assert f"{ran} of {DEMO_TRIALS} trials ran" in warning and warning in text
    assert cut >= 1
    if "cfgan" in MODELS:
        assert res["results"]["cfgan"]["tuning"][0]["timed_out"]
