"""GAR and its regression-only ablation (gar-reg) on a synthetic cold-start case.

The case: 3 taste groups of 20 users; 60 items, 20 per group; each item's content is its group's word plus
two noise words; a user interacts with about 70% of their group's items. 30% of the items are cold
(no training interaction). Expected answer: a user's own group's cold items rank above the other groups'
cold items (per-user AUC over the cold-test items well above the 0.5 of chance), since content alone
says which group a cold item belongs to.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit, cold_items
from gan4rec.errors import DataError
from gan4rec.models import MODELS, create
from gan4rec.models.base import Recommender

N_GROUPS, USERS_PER, ITEMS_PER, NOISE = 3, 20, 20, 12
BACKBONE = {"n_factors": 8, "lr": 0.05, "l2": 1e-2, "epochs": 20, "batch_size": 64, "device": "cpu"}
FAST = {"backbone_params": BACKBONE, "batch_size": 64, "epochs": 15, "content_dim": 8, "g_hidden": 32,
        "d_hidden": 32, "device": "cpu"}


def make_cold_case(seed: int = 0) -> Interactions:
    """Interactions with item features where content determines each item's users (module docstring)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = N_GROUPS * USERS_PER, N_GROUPS * ITEMS_PER
    users, items = [], []
    for u in range(n_users):
        g = u // USERS_PER
        for i in range(g * ITEMS_PER, (g + 1) * ITEMS_PER):
            if rng.random() < 0.7:
                users.append(u)
                items.append(i)
    words = np.zeros((n_items, N_GROUPS + NOISE), dtype=np.float32)
    words[np.arange(n_items), np.arange(n_items) // ITEMS_PER] = 2.0
    noise = rng.integers(0, NOISE, size=(n_items, 2)) + N_GROUPS
    words[np.arange(n_items)[:, None], noise] = 1.0
    return Interactions.from_indices(np.array(users), np.array(items), IdMap(np.arange(n_users)),
                                     IdMap(np.arange(n_items)), item_features={"words": sp.csr_matrix(words)})


@pytest.fixture(scope="module")
def split() -> ColdSplit:
    return cold_items(make_cold_case(), cold_frac=0.3, random_state=1)


@pytest.fixture(scope="module")
def fitted(split) -> dict[str, Recommender]:
    return {name: create(name, FAST, random_state=0).fit(split.train, split.valid) for name in ("gar", "gar-reg")}


def cold_auc(scores: np.ndarray, items: np.ndarray) -> float:
    """Mean over users of the AUC of their own group's cold items against the other groups' cold items."""
    group = items // ITEMS_PER
    aucs = []
    for u in range(scores.shape[0]):
        own = group == u // USERS_PER
        s_pos, s_neg = scores[u, items[own]], scores[u, items[~own]]
        aucs.append((s_pos[:, None] > s_neg[None, :]).mean() + 0.5 * (s_pos[:, None] == s_neg[None, :]).mean())
    return float(np.mean(aucs))


def test_registry_flags() -> None:
    assert MODELS["gar"].adversarial and MODELS["gar"].cold_start
    assert MODELS["gar-reg"].cold_start and not MODELS["gar-reg"].adversarial
    assert MODELS["gar-reg"]().alpha == 1.0 and MODELS["gar"]().alpha == 0.05


@pytest.mark.parametrize("name", ["gar", "gar-reg"])
def test_content_ranks_the_right_cold_items(name, fitted, split) -> None:
    model = fitted[name]
    scores = model.score(np.arange(split.train.n_users))
    assert cold_auc(scores, split.cold_test_items) > 0.8
    # It validated on the cold task and kept an epoch.
    assert model.best_epoch_ is not None and any("valid_NDCG@20" in row for row in model.history_)


def test_new_items_score_like_cold_items_of_the_map(fitted, split) -> None:
    model = fitted["gar"]
    users = np.arange(split.train.n_users)
    cold = split.cold_test_items
    new = model.score_new_items(users, model.features_[cold])
    np.testing.assert_allclose(new, model.score(users)[:, cold], rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="features have shape"):
        model.score_new_items(users, np.ones((2, 3)))


def test_alpha_one_never_lets_the_recommender_touch_the_generator(split) -> None:
    """With alpha=1 G's weights do not depend on anything about R (its learning rate, its loss weights)."""
    a = create("gar-reg", {**FAST, "epochs": 3, "patience": None}, random_state=0).fit(split.train)
    b = create("gar-reg", {**FAST, "epochs": 3, "patience": None, "d_lr": 0.05, "beta": 0.7},
               random_state=0).fit(split.train)
    gen_a, gen_b = a.modules_["generator"].state_dict(), b.modules_["generator"].state_dict()
    for key, value in gen_a.items():
        assert torch_equal(value, gen_b[key]), key
    # ... whereas with alpha < 1 R's settings reach G through the adversarial term.
    c = create("gar", {**FAST, "epochs": 3, "patience": None}, random_state=0).fit(split.train)
    d = create("gar", {**FAST, "epochs": 3, "patience": None, "d_lr": 0.05, "beta": 0.7},
               random_state=0).fit(split.train)
    w_c = c.modules_["generator"].state_dict()["linears.0.weight"]
    assert not torch_equal(w_c, d.modules_["generator"].state_dict()["linears.0.weight"])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_seeded_fits_are_bit_identical(split) -> None:
    params = {**FAST, "epochs": 3}
    users = np.arange(split.train.n_users)
    a = create("gar", params, random_state=3).fit(split.train, split.valid).score(users)
    b = create("gar", params, random_state=3).fit(split.train, split.valid).score(users)
    c = create("gar", params, random_state=4).fit(split.train, split.valid).score(users)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_round_trip(fitted, split, tmp_path) -> None:
    model = fitted["gar"]
    model.cold_scale, model.cold_offset = 2.0, 0.5
    try:
        model.save(tmp_path / "m")
        loaded = Recommender.load(tmp_path / "m")
        users = np.arange(split.train.n_users)
        np.testing.assert_array_equal(loaded.score(users), model.score(users))
        feats = model.features_[split.cold_test_items[:3]]
        np.testing.assert_array_equal(loaded.score_new_items(users, feats), model.score_new_items(users, feats))
        assert loaded.refit_params()["epochs"] == model.best_epoch_
    finally:
        model.cold_scale, model.cold_offset = 1.0, 0.0


def test_refit_params_pin_both_epochs(fitted) -> None:
    out = fitted["gar"].refit_params()
    assert out["epochs"] == fitted["gar"].best_epoch_
    assert "epochs" in out["backbone_params"] and out["backbone_params"]["n_factors"] == 8


@pytest.mark.parametrize(("params", "match"), [
    ({"backbone": "ease"}, "backbone='ease'"),
    ({"alpha": 1.5}, "alpha=1.5"),
    ({"weighting": "bm25"}, "weighting='bm25'"),
    ({"d_hidden": []}, "d_hidden"),
    ({"backbone_params": {"no_such": 1}}, "no parameter 'no_such'"),
])
def test_bad_params_are_one_line_errors(params, match, split) -> None:
    with pytest.raises(DataError, match=match) as info:
        create("gar", {**FAST, **params}).fit(split.train)
    assert "\n" not in str(info.value)


def test_without_features_cold_items_tie(split) -> None:
    bare = Interactions(split.train.indptr, split.train.indices, split.train.user_map, split.train.item_map)
    model = create("gar", {**FAST, "epochs": 2}, random_state=0).fit(bare)
    scores = model.score(np.arange(3))[:, split.cold_test_items]
    assert np.all(scores == scores[:, :1])


def test_backbone_scorer_keeps_the_backbone_warm_scores(fitted, split) -> None:
    model = fitted["gar"]
    users = np.arange(split.train.n_users)
    model.score_with = "backbone"
    try:
        scores = model.score(users)
        warm = model.warm_
        np.testing.assert_allclose(scores[:, warm], (model.user_emb_ @ model.item_emb_.T)[:, warm], rtol=1e-4,
                                   atol=1e-5)
        assert cold_auc(scores, split.cold_test_items) > 0.8
        new = model.score_new_items(users, model.features_[split.cold_test_items])
        np.testing.assert_allclose(new, scores[:, split.cold_test_items], rtol=1e-5, atol=1e-5)
    finally:
        model.score_with = "recommender"
    assert not np.allclose(model.score(users), scores)
