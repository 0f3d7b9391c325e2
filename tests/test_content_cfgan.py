"""content-cfgan on the synthetic cold-start case of tests/test_gar.py (see its docstring for the answer)."""

from __future__ import annotations

import numpy as np
import pytest
from test_gar import cold_auc, make_cold_case

from gan4rec.data.interactions import Interactions
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


def test_seeded_fits_are_bit_identical(split) -> None:
    params = {**FAST, "epochs": 3}
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
