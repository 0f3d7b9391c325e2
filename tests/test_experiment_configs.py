"""The shipped experiment configs (configs/experiments/*.toml) load and name what exists.

Expected: each file passes :func:`gan4rec.config.load_experiment`; every listed model is in the registry;
every fixed param is one the model takes (``create`` checks names and values), so a config cannot fail only
after an hour of tuning the models before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gan4rec.config import load_experiment
from gan4rec.experiment import Protocol
from gan4rec.models import MODELS, create

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "experiments").glob("*.toml"))


def test_there_are_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"demo.toml", "ml100k.toml", "cold-start.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_names_registered_models(path: Path) -> None:
    cfg = load_experiment(path)
    assert set(cfg["models"]) <= set(MODELS), set(cfg["models"]) - set(MODELS)
    assert set(cfg["params"]) <= set(cfg["models"]), "fixed params of a model the config does not run"
    for name, params in cfg["params"].items():
        model = create(name, params, random_state=0)
        assert {k: model.get_params()[k] for k in params} == params
    Protocol(**cfg.get("protocol", {}))
