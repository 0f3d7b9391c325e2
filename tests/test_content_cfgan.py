"""content-cfgan on the synthetic cold-start case of tests/test_gar.py (see its docstring for the answer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_gar import cold_auc, make_cold_case

from gan4rec.data.interactions import Interactions
from gan4rec.data.sampling import sample_unobserved_dense, sample_unobserved_dense_select, smallest_k_mask
from gan4rec.data.split import ColdSplit, cold_items
from gan4rec.errors import DataError
from gan4rec.models import MODELS, create
from gan4rec.models.base import Recommender

FAST = {"g_hidden": 32, "d_hidden": 16, "content_dim": 8, "epochs": 40, "g_batch_size": 16, "d_batch_size": 16,
        "g_lr": 1e-2, "d_lr": 1e-2, "eval_every": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def split() -> ColdSplit:
    return cold_items(make_cold_case(), cold_frac=0.3, random_state=1)


@pytest.fixture(scope="module")
def fitted(split) -> Recommender:
    return create("content-cfgan", FAST, random_state=0).fit(split.train, split.valid)


def test_registry_flags() -> None:
    assert MODELS["content-cfgan"].adversarial and MODELS["content-cfgan"].cold_start


def test_content_ranks_the_right_cold_items(fitted, split) -> None:
    assert cold_auc(fitted.score(np.arange(split.train.n_users)), split.cold_test_items) > 0.7  # chance: 0.5
    assert fitted.best_epoch_ is not None


def test_new_items_score_like_cold_items_of_the_map(fitted, split) -> None:
    users = np.arange(split.train.n_users)
    cold = split.cold_test_items
    np.testing.assert_allclose(fitted.score_new_items(users, fitted.features_[cold]),
                               fitted.score(users)[:, cold], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme", ["zr", "zp", "pm", "none"])
def test_seeded_fits_are_bit_identical(split, scheme) -> None:
    params = {**FAST, "epochs": 3, "scheme": scheme}
    users = np.arange(split.train.n_users)
    a = create("content-cfgan", params, random_state=3).fit(split.train, split.valid).score(users)
    b = create("content-cfgan", params, random_state=3).fit(split.train, split.valid).score(users)
    c = create("content-cfgan", params, random_state=4).fit(split.train, split.valid).score(users)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_round_trip(fitted, split, tmp_path) -> None:
    fitted.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
    feats = fitted.features_[split.cold_test_items[:3]]
    np.testing.assert_array_equal(loaded.score_new_items(users, feats), fitted.score_new_items(users, feats))


@pytest.mark.parametrize(("params", "match"), [
    ({"scheme": "zz"}, "scheme='zz'"),
    ({"cond_dropout": 1.5}, "cond_dropout=1.5"),
    ({"g_steps": 0, "d_steps": 0}, "g_steps=0"),
])
def test_bad_params_are_one_line_errors(params, match, split) -> None:
    with pytest.raises(DataError, match=match) as info:
        create("content-cfgan", {**FAST, **params}).fit(split.train)
    assert "\n" not in str(info.value)


def test_without_features_cold_items_tie(split) -> None:
    bare = Interactions(split.train.indptr, split.train.indices, split.train.user_map, split.train.item_map)
    model = create("content-cfgan", {**FAST, "epochs": 2}, random_state=0).fit(bare)
    scores = model.score(np.arange(3))[:, split.cold_test_items]
    assert np.all(scores == scores[:, :1])


@pytest.mark.parametrize("player", ["generator", "discriminator"])
def test_sparse_first_layer_equals_the_dense_one(fitted, player) -> None:
    net = fitted.modules_[player]
    g = torch.Generator().manual_seed(0)
    k, n_users = fitted.codes_.dim, fitted.n_users
    x = torch.randn((6, k), generator=g)
    v = (torch.rand((6, n_users), generator=g) < 0.2).float()
    v[2] = 0.0  # a row without ones (a cold item, or a dropped condition)
    pos, cols = v.nonzero(as_tuple=True)
    np.testing.assert_allclose(net.hidden_layer_sparse(x, pos, cols).detach(), net.hidden_layer(x, v).detach(),
                               rtol=1e-6, atol=1e-6)
    dense = torch.autograd.grad(net.hidden_layer(x, v).sum(), net.hidden.weight)[0]
    sparse = torch.autograd.grad(net.hidden_layer_sparse(x, pos, cols).sum(), net.hidden.weight)[0]
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_selection_sampler_equals_the_sorting_one(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    b, n = int(torch.randint(1, 30, (1,), generator=g)), int(torch.randint(1, 200, (1,), generator=g))
    observed = torch.rand((b, n), generator=g) < torch.rand((b, 1), generator=g)
    ratio = (0.0, 1.0, 0.7, 0.05)[seed % 4]
    a = sample_unobserved_dense(observed, ratio, torch.Generator().manual_seed(seed))
    c = sample_unobserved_dense_select(observed, ratio, torch.Generator().manual_seed(seed))
    assert torch.equal(a, c)


def test_smallest_k_mask_breaks_ties_like_a_stable_sort() -> None:
    g = torch.Generator().manual_seed(0)
    keys = torch.randint(0, 4, (20, 30), generator=g).float()  # many ties
    counts = torch.randint(0, 31, (20,), generator=g)
    expected = torch.zeros_like(keys, dtype=torch.bool)
    expected.scatter_(1, keys.argsort(dim=1, stable=True), torch.arange(30)[None, :] < counts[:, None])
    assert torch.equal(smallest_k_mask(keys, counts), expected)
    assert torch.equal(smallest_k_mask(keys, counts).sum(dim=1), counts)


def test_g_step_leaves_d_trainable(fitted) -> None:
    assert all(p.requires_grad for p in fitted.modules_["discriminator"].parameters())
