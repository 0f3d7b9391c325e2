"""The cold-items split through the whole protocol: `gan4rec train --split cold-items` reports each task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan4rec.cli import main


@pytest.mark.parametrize("model", ["content-knn", "ials"])
def test_train_on_cold_items_reports_warm_cold_and_overall(model: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    params = json.dumps({"n_factors": 8, "iterations": 3}) if model == "ials" else "{}"
    assert main(["-q", "train", "--model", model, "--params", params, "--split", "cold-items", "--seed", "0",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["protocol"]["split"] == "cold-items"
    assert res["protocol"]["test_frac"] == res["protocol"]["valid_frac"] == 0.1  # GAR's 80/10/10 by default
    for part in ("valid", "test"):
        assert set(res["metrics"][part]) == {"warm", "cold", "overall"}
        assert 0 < res["metrics"][part]["warm"]["NDCG@20"] <= 1
        assert 0 < res["metrics"][part]["overall"]["NDCG@20"] <= 1
    if model == "ials":  # pure CF cannot rank cold items: no cold task, and they rank last overall
        assert res["cold_start"] is False and res["metrics"]["test"]["cold"] is None
        assert res["calibration"] is None
    else:
        assert res["cold_start"] is True and 0 < res["metrics"]["test"]["cold"]["NDCG@20"] <= 1
        assert {"cold_scale", "cold_offset"} <= set(res["calibration"])
        assert res["refit_params"]["cold_scale"] == res["calibration"]["cold_scale"]


@pytest.mark.parametrize("model", ["content-knn", "ials"])
def test_evaluate_reports_the_three_tasks_as_train_does(model: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`gan4rec evaluate MODEL_DIR` of a model trained on the cold-items split re-creates the split and reports
    the warm, cold and overall tasks (the cold one "cannot" for pure CF), with train's test metrics exactly."""
    params = json.dumps({"n_factors": 8, "iterations": 3}) if model == "ials" else "{}"
    assert main(["-q", "train", "--model", model, "--params", params, "--split", "cold-items", "--seed", "0",
                 "--json", str(tmp_path / "r.json"), "--save", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(tmp_path / "m"), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    trained, evaluated = (json.loads((tmp_path / f).read_text()) for f in ("r.json", "e.json"))
    assert set(evaluated["metrics"]["test"]) == {"warm", "cold", "overall"}
    assert evaluated["metrics"]["test"] == trained["metrics"]["test"]
    assert evaluated["cold_start"] is trained["cold_start"] is (model == "content-knn")
    assert "test, warm:" in out and "test, overall:" in out
    if model == "ials":
        assert evaluated["metrics"]["test"]["cold"] is None and "test, cold: (the model cannot score cold items)" in out
    else:
        assert "test, cold:\n" in out


def test_unset_fractions_take_the_splits_default_everywhere() -> None:
    """The CLI, config files and Python share one rule: cold-items defaults to GAR's 80/10/10 of the warm
    interactions, every other split to 0.2 each; a fraction that is set is kept."""
    from gan4rec.experiment import Protocol

    assert (Protocol().test_frac, Protocol().valid_frac) == (0.2, 0.2)
    cold = Protocol(split="cold-items")
    assert (cold.test_frac, cold.valid_frac) == (0.1, 0.1)
    assert Protocol(split="cold-items", test_frac=0.2).test_frac == 0.2
    assert Protocol(split="random", valid_frac=0.0).valid_frac == 0.0
