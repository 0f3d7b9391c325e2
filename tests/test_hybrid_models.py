"""Every cold-start hybrid on the synthetic content case of ``test_hybrid_common`` (content decides users).

Expected: each hybrid ranks the cold-test items of a user's group first (cold NDCG@20 far above chance,
where a pure CF model ties all cold items), calibration changes only cold columns, save -> load gives
identical scores, and a cold item given again as a new item (``score_new_items``) scores as in ``score``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_hybrid_common import ITEMS_PER, USERS_PER, make_cold_case

from gan4rec.data.split import ColdSplit, cold_items
from gan4rec.evaluation.cold import evaluate_cold
from gan4rec.models import MODELS, create
from gan4rec.models.base import Recommender

FAST: dict[str, dict] = {
    "content-knn": {"k": 20},
    "ridge-map": {"backbone": "ials", "l2": 0.1,
                  "backbone_params": {"n_factors": 8, "reg": 1.0, "iterations": 8, "device": "cpu"}},
    "ease-side": {"l2": 100.0, "beta": 3.0},
    "dropoutnet": {"backbone": "ials", "backbone_params": {"n_factors": 8, "reg": 1.0, "iterations": 8,
                                                           "device": "cpu"},
                   "hidden": 32, "out": 16, "lr": 1e-2, "epochs": 60, "batch_size": 64, "device": "cpu"},
}
# The non-GAN hybrids; the GAN hybrids (gar, gar-reg, content-cfgan) have their own tests (test_gar.py,
# test_content_cfgan.py), with settings that let a GAN learn the case.
GAN_HYBRIDS = {"gar", "gar-reg", "content-cfgan"}
HYBRIDS = [name for name, cls in MODELS.items() if cls.cold_start and name not in GAN_HYBRIDS]


@pytest.fixture(scope="module")
def cold_split() -> ColdSplit:
    return cold_items(make_cold_case(), cold_frac=0.3, random_state=1)


@pytest.fixture(scope="module")
def fitted(cold_split) -> dict[str, Recommender]:
    return {name: create(name, FAST.get(name), random_state=0).fit(cold_split.train) for name in HYBRIDS}


def test_every_hybrid_is_registered_and_tested() -> None:
    assert set(HYBRIDS) >= {"content-knn", "ridge-map", "ease-side", "dropoutnet"}
    for name in HYBRIDS:
        assert not MODELS[name].adversarial and MODELS[name].search_space
    assert GAN_HYBRIDS <= {n for n, c in MODELS.items() if c.cold_start}
    assert {n for n, c in MODELS.items() if c.cold_start and c.adversarial} <= GAN_HYBRIDS


@pytest.mark.parametrize("name", HYBRIDS)
def test_ranks_cold_items_by_content(name: str, fitted, cold_split) -> None:
    model = fitted[name]
    cold = cold_split.cold_test_items
    users = np.arange(model.n_users)
    top = cold[np.argmax(model.score(users)[:, cold], axis=1)]  # each user's best cold-test item
    np.testing.assert_array_equal(top // ITEMS_PER, users // USERS_PER)
    res = evaluate_cold(model.score, cold_split, part="test")
    assert res["cold"].metrics["NDCG@20"] > 0.7, res["cold"].metrics
    assert res["warm"].metrics["NDCG@20"] > 0.3, res["warm"].metrics


@pytest.mark.parametrize("name", HYBRIDS)
def test_calibration_and_round_trip(name: str, fitted, cold_split, tmp_path) -> None:
    model = fitted[name]
    users = np.arange(model.n_users)
    model.cold_scale, model.cold_offset = 1.0, 0.0
    before = model.score(users)
    model.cold_scale, model.cold_offset = 0.5, -0.25
    after = model.score(users)
    cold = cold_split.cold_mask()
    np.testing.assert_allclose(after[:, cold], 0.5 * before[:, cold] - 0.25, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after[:, ~cold], before[:, ~cold])
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(users), after)


@pytest.mark.parametrize("name", HYBRIDS)
def test_score_new_items_matches_cold_items(name: str, fitted, cold_split) -> None:
    model = fitted[name]
    model.cold_scale, model.cold_offset = 2.0, 0.1
    cold = np.flatnonzero(cold_split.cold_mask())
    users = np.arange(model.n_users)
    new = model.score_new_items(users, model.features_[cold])
    np.testing.assert_allclose(new, model.score(users)[:, cold], rtol=1e-3, atol=1e-4)


def test_ease_side_matches_dense_solution(cold_split) -> None:
    """The LAPACK path equals the closed form written with numpy."""
    from gan4rec.models.hybrid.common import weigh_rows

    model = create("ease-side", FAST["ease-side"]).fit(cold_split.train)
    x = cold_split.train.csr().toarray().astype(np.float64)
    f = weigh_rows(model.features_, model.idf_, model.weighting).toarray().astype(np.float64)
    z = np.vstack([x, model.beta * f.T])
    warm = model.warm_
    p = np.linalg.inv(z[:, warm].T @ z[:, warm] + model.l2 * np.eye(warm.sum()))
    b_ww = -p / np.diag(p)[None, :]
    np.fill_diagonal(b_ww, 0.0)
    b_wc = p @ z[:, warm].T @ z[:, ~warm]
    np.testing.assert_allclose(model.weights_[:, warm], b_ww, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.weights_[:, ~warm], b_wc, rtol=1e-4, atol=1e-6)


def test_ease_side_memory_guard(cold_split) -> None:
    from gan4rec.errors import DataError

    with pytest.raises(DataError, match="max_memory_gb"):
        create("ease-side", {"max_memory_gb": 1e-6}).fit(cold_split.train)


def test_cf_models_declare_no_cold_start() -> None:
    for name in ("ials", "bpr", "ease", "itemknn"):
        assert MODELS[name].cold_start is False


def test_features_without_warm_content_still_score(cold_split) -> None:
    """Dense, empty-row content is accepted (rows of zeros stay zero)."""
    model = create("content-knn", {"k": 5}).fit(cold_split.train)
    out = model.score_new_items([0, 1], sp.csr_matrix((3, model.n_features), dtype=np.float32))
    assert out.shape == (2, 3) and np.all(out == 0)


@pytest.mark.parametrize("name", ["ridge-map", "dropoutnet"])
def test_same_seed_same_scores(name: str, fitted, cold_split) -> None:
    again = create(name, FAST[name], random_state=0).fit(cold_split.train)
    users = np.arange(again.n_users)
    fitted[name].cold_scale, fitted[name].cold_offset = 1.0, 0.0
    np.testing.assert_array_equal(again.score(users), fitted[name].score(users))


def test_bad_params_are_refused(cold_split) -> None:
    from gan4rec.errors import DataError

    with pytest.raises(DataError, match="backbone"):
        create("ridge-map", {"backbone": "ease"}).fit(cold_split.train)
    with pytest.raises(DataError, match="cold_scale"):
        create("content-knn", {"cold_scale": float("nan")}).fit(cold_split.train)
    with pytest.raises(DataError, match="weighting"):
        create("ease-side", {"weighting": "bm25"}).fit(cold_split.train)


@pytest.mark.parametrize(("params", "match"), [
    ({"epochs": 0}, "epochs=0"),
    ({"epochs": "10"}, "epochs"),
    ({"lr": -1.0}, "lr=-1.0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"weighting": "bm25"}, "weighting='bm25'"),
    ({"backbone": "ease"}, "backbone='ease'"),
    ({"dropout": 1.0}, "dropout=1.0"),
])
def test_dropoutnet_checks_its_params_before_the_backbone_fit(params, match, cold_split, monkeypatch) -> None:
    """A bad param is a one-line error raised before the (slow) backbone is fitted."""
    import gan4rec.models
    from gan4rec.errors import DataError

    model = create("dropoutnet", {**FAST["dropoutnet"], **params}, random_state=0)

    def no_fit(*args, **kw):
        raise AssertionError("the backbone was created before the params were checked")

    monkeypatch.setattr(gan4rec.models, "create", no_fit)  # read by the backbone fit at call time
    with pytest.raises(DataError, match=match) as info:
        model.fit(cold_split.train, cold_split.valid)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", HYBRIDS)
def test_a_generator_seed_gives_the_same_fit(name: str, cold_split) -> None:
    """``random_state`` may be a Generator: two alike-seeded ones give bit-identical scores (DropoutNet once
    handed its backbone ``None`` for a Generator, which then drew fresh entropy)."""
    users = np.arange(cold_split.train.n_users)
    scores = [create(name, FAST.get(name), random_state=np.random.default_rng(7)).fit(cold_split.train).score(users)
              for _ in range(2)]
    np.testing.assert_array_equal(scores[0], scores[1])
