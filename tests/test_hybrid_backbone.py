"""The shared backbone memo (:mod:`gan4rec.models.hybrid.backbone`) changes no result.

Expected: a hybrid fitted while its backbone comes from the memo scores bit-identically to one fitted with
a fresh backbone (memo emptied); factors stored with :func:`remember_backbone` are used; a seed that is not
an int is never memoised.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_hybrid_common import make_cold_case

from gan4rec.data.split import cold_items
from gan4rec.models import create
from gan4rec.models.hybrid import backbone as bb

IALS = {"n_factors": 8, "reg": 1.0, "iterations": 6, "device": "cpu"}
CASES = {
    "ridge-map": {"backbone": "ials", "backbone_params": IALS, "l2": 0.1},
    "dropoutnet": {"backbone": "ials", "backbone_params": IALS, "hidden": 16, "out": 8, "epochs": 3,
                   "batch_size": 64, "device": "cpu"},
    "gar": {"backbone": "ials", "backbone_params": IALS, "epochs": 2, "batch_size": 64, "content_dim": 8,
            "g_hidden": 16, "d_hidden": 16, "device": "cpu"},
    "gar-reg": {"backbone": "ials", "backbone_params": IALS, "epochs": 2, "batch_size": 64, "content_dim": 8,
                "g_hidden": 16, "d_hidden": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def split():
    return cold_items(make_cold_case(), cold_frac=0.3, random_state=1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_memo_hit_scores_as_a_fresh_fit(name: str, split, monkeypatch) -> None:
    users = np.arange(split.train.n_users)
    bb.clear_backbones()
    fresh = create(name, CASES[name], random_state=0).fit(split.train).score(users)
    fresh_fits = []
    from gan4rec.models.hybrid import common

    real = common.cf_factors  # read by backbone_factors at call time, only for a fresh fit
    monkeypatch.setattr(common, "cf_factors", lambda m: fresh_fits.append(m) or real(m))
    again = create(name, CASES[name], random_state=0).fit(split.train).score(users)
    np.testing.assert_array_equal(fresh, again)
    assert fresh_fits == []
    bb.clear_backbones()


def test_remembered_factors_are_used(split) -> None:
    bb.clear_backbones()
    model = create("ials", IALS, random_state=0).fit(split.train)
    from gan4rec.models.hybrid.common import cf_factors

    user, item = cf_factors(model)
    bb.clear_backbones()
    assert bb.remember_backbone("ials", IALS, split.train, None, random_state=0, device=None,
                                user=user * 2, item=item, fit_s=1.5)
    got = bb.backbone_factors("ials", IALS, split.train, None, random_state=0, device="cpu")
    assert got.memo_hit and got.fit_s == 1.5
    np.testing.assert_array_equal(got.user, user * 2)
    got.user[:] = 0  # a copy: the memo is unchanged
    np.testing.assert_array_equal(bb.backbone_factors("ials", IALS, split.train, None, random_state=0,
                                                      device="cpu").user, user * 2)
    bb.clear_backbones()


def test_generator_seeds_are_not_memoised(split) -> None:
    bb.clear_backbones()
    rng = np.random.default_rng(0)
    assert bb.backbone_key("ials", IALS, split.train, None, random_state=rng, device=None) is None
    assert bb.backbone_key("ials", IALS, split.train, None, random_state=None, device=None) is None
    first = bb.backbone_factors("ials", IALS, split.train, None, random_state=rng, device=None)
    assert not first.memo_hit
    assert not bb.backbone_factors("ials", IALS, split.train, None, random_state=rng, device=None).memo_hit


def test_dropoutnet_and_gar_share_the_backbone_fit_with_cold_validation(split, monkeypatch) -> None:
    """Both validate their backbone on the warm part of ``valid`` only: one fit serves both."""
    assert split.cold_valid.nnz > 0  # the validation data holds interactions on cold items
    from gan4rec.models.hybrid import common

    fits = []
    real = common.cf_factors  # read by backbone_factors at call time, only for a fresh fit
    monkeypatch.setattr(common, "cf_factors", lambda m: fits.append(m) or real(m))
    bb.clear_backbones()
    gar = create("gar", CASES["gar"], random_state=0).fit(split.train, split.valid)
    net = create("dropoutnet", CASES["dropoutnet"], random_state=0).fit(split.train, split.valid)
    assert len(fits) == 1
    user, _ = real(fits[0])
    np.testing.assert_array_equal(net.modules_["net"].user_pref.numpy(), user)
    assert gar.backbone_refit_ == fits[0].refit_params()
    bb.clear_backbones()


@pytest.mark.parametrize("name", ["ridge-map", "dropoutnet"])
def test_backbones_early_stop_on_the_warm_validation_part(name: str, split) -> None:
    """Every hybrid's BPR backbone validates on the warm items of ``valid`` only (cold items have no factors
    to learn from), so ridge-map and DropoutNet start from the very backbone GAR gets."""
    from gan4rec.models.hybrid.gan_parts import fit_backbone

    bpr = {"n_factors": 8, "epochs": 6, "eval_every": 1, "patience": 2, "device": "cpu"}
    params = {**CASES[name], "backbone": "bpr", "backbone_params": bpr}
    valid = split.valid
    bb.clear_backbones()
    model = create(name, params, random_state=0).fit(split.train, valid)
    assert not model.warm_[valid.indices].all()  # the validation part does hold cold items
    keys = list(bb._MEMO)
    bb.clear_backbones()
    _, user, _item = fit_backbone("bpr", bpr, split.train, valid, model.warm_, random_state=0, device="cpu")
    assert len(keys) == 1 and list(bb._MEMO) == keys  # the same key: the warm part of valid
    if name == "ridge-map":
        np.testing.assert_array_equal(model.user_factors_, user)
    bb.clear_backbones()
