"""The GANs' defaults, epoch caps, published configurations, search spaces and cost warnings."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest
from test_cfgan import TINY, _data

from gan4rec.models import MODELS
from gan4rec.models.gan.cfgan import CFGAN
from gan4rec.models.gan.easegan import EASEGAN
from gan4rec.models.gan.irgan import IRGAN

ROOT = Path(__file__).resolve().parents[1]
GANS = [CFGAN, IRGAN, EASEGAN]


def test_cfgan_defaults_are_the_tuned_user_based_setting_with_early_stopping() -> None:
    tuned = tomllib.loads((ROOT / "configs" / "cfgan-ml100k-user.toml").read_text())["params"]
    d = CFGAN.default_params()
    assert d["mode"] == tuned["mode"] == "user" and d["scheme"] == tuned["scheme"] == "zp"
    for key in ("zr_ratio", "pm_ratio", "alpha", "g_lr", "d_lr", "g_l2", "d_l2"):
        assert d[key] == pytest.approx(tuned[key], rel=5e-3), key  # rounded to three digits
    assert (d["g_hidden"], d["d_hidden"]) == (tuned["g_hidden"], tuned["d_hidden"])
    assert d["epochs"] is None and d["eval_every"] == 5 and d["patience"] == 4
    for cls in GANS:
        assert cls.default_params()["patience"] is not None, f"{cls.name}: early stopping is on by default"


def test_the_cfgan_epoch_cap_scales_with_the_data_and_is_used_by_fit() -> None:
    assert CFGAN.default_epochs(943, 1682) == 126  # ML-100K
    assert CFGAN.default_epochs(671, 9066) == 33  # ml-latest-small
    assert CFGAN.default_epochs(6040, 3706) == 9  # ML-1M
    assert CFGAN.default_epochs(138_493, 26_744) == 1  # ML-20M
    assert CFGAN.default_epochs(10, 10) == CFGAN.max_default_epochs

    class Small(CFGAN):
        epoch_budget_cells = 2 * 80 * 50  # two epochs of the 80 x 50 test data

    train, valid = _data()
    params = {**TINY, "mode": "user", "eval_every": 1, "patience": None, "random_state": 0}
    model = Small(**params).fit(train, valid)
    assert model.epochs is None and len(model.history_) == 2
    assert model.refit_params() == {"epochs": model.best_epoch_}  # a refit pins a number, not None
    assert CFGAN(**{**params, "epochs": 1}).fit(train).history_[-1]["epoch"] == 1


def test_published_configs_are_valid_params_and_the_cfgan_one_is_the_paper_config() -> None:
    for cls in MODELS.values():
        for config in cls.published_configs:
            cls.check_params(config)
    paper = tomllib.loads((ROOT / "configs" / "cfgan-ml100k-paper.toml").read_text())["params"]
    (published,) = CFGAN.published_configs
    assert {k: v for k, v in published.items() if k in paper} == paper
    assert published["patience"] is None  # the original trains a fixed 250 outer iterations
    assert EASEGAN.published_configs == ()  # its defaults are our own tuning, not a publication
    (authors,) = IRGAN.published_configs
    assert authors["n_factors"] == 5 and authors["importance_sampling"] == 0.2
    assert authors["g_optimizer"] == authors["d_optimizer"] == "sgd"


@pytest.mark.parametrize("cls", GANS, ids=lambda c: c.name)
def test_search_spaces_are_narrowed_and_the_wide_one_is_kept(cls: type) -> None:
    narrow, wide = cls.search_space, cls.search_space_wide
    assert set(narrow) <= set(wide)
    for key, spec in narrow.items():
        ref = wide[key]
        if spec["type"] == "categorical":
            assert set(spec["choices"]) <= set(ref["choices"]), key
        else:
            assert ref["low"] <= spec["low"] <= spec["high"] <= ref["high"], key
    assert narrow != wide or cls is EASEGAN
    if cls is IRGAN:
        assert "recommend_with" not in narrow and "recommend_with" in wide
    if cls is CFGAN:
        assert narrow["scheme"]["choices"] == ["zp", "zr"]


def test_easegan_warns_once_with_its_memory_estimate_before_a_big_fit(caplog: pytest.LogCaptureFixture) -> None:
    class Cheap(EASEGAN):
        warn_memory_gb = 0.0

    train, _ = _data()
    assert EASEGAN.memory_gb(15_000) == pytest.approx(3.85, abs=0.01)
    with caplog.at_level(logging.WARNING, logger="gan4rec.models.gan.easegan"):
        Cheap(epochs=1, hidden=8, d_hidden=8, device="cpu", random_state=0).fit(train)
        EASEGAN(epochs=1, hidden=8, d_hidden=8, device="cpu", random_state=0).fit(train)
    warned = [r.getMessage() for r in caplog.records if r.name == "gan4rec.models.gan.easegan"]
    assert len(warned) == 1 and "\n" not in warned[0] and f"{train.n_items} items need about" in warned[0]


def test_irgan_leaves_out_fake_pos_rate_where_exclude_seen_makes_it_zero() -> None:
    from test_irgan import FAST
    from test_irgan import _data as irgan_data

    split = irgan_data()
    rows = {
        flag: IRGAN(**{**FAST, "epochs": 1, "exclude_seen": flag}).fit(split.train).history_[0]
        for flag in (False, True)
    }
    assert rows[False]["fake_pos_rate"] > 0 and "fake_pos_rate" not in rows[True]
