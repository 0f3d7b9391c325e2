"""BPR-MF, Mult-VAE, iALS and the negative samplers: determinism, correctness of the solves, quality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.sampling import NegativeSampler, sample_unobserved, sample_unobserved_dense
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.models import create
from gan4rec.models.baselines.ials import IALS
from gan4rec.models.baselines.multvae import MultVAE

FAST = {
    "bpr": {"n_factors": 8, "lr": 0.02, "l2": 1e-3, "epochs": 4, "batch_size": 128, "device": "cpu"},
    "multvae": {
        "hidden": 32,
        "latent": 8,
        "epochs": 4,
        "batch_size": 16,
        "total_anneal_steps": 10,
        "device": "cpu",
    },
    "ials": {"n_factors": 8, "reg": 1.0, "alpha": 5.0, "iterations": 3, "device": "cpu"},
}
FAST["bpr-sparse"] = {**FAST["bpr"], "optimizer": "sparse_adam"}


def _create(name: str, params: dict, **kw):
    """``name`` may carry a variant suffix (``bpr-sparse``): the registry name is the part before it."""
    return create(name.split("-")[0], params, **kw)


def _blocks(n_users: int = 80, n_items: int = 60, per_user: int = 10, seed: int = 0) -> Interactions:
    """Users of four taste groups, each interacting with random items of its own block of items."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    width = n_items // 4
    items = (users % 4) * width + rng.integers(0, width, len(users))
    return Interactions.from_indices(users, items, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)))


# ------------------------------------------------------------------------------------------- sampling
def test_negative_sampler_hand_example() -> None:
    # Positives of user 0: 1, 2, 5 among 7 items; the unobserved items are 0, 3, 4, 6.
    sampler = NegativeSampler(np.array([0, 3, 3]), np.array([1, 2, 5]), n_items=7)
    neg = sampler.sample(np.zeros(4000, dtype=np.int64), np.random.default_rng(0))
    counts = np.bincount(neg, minlength=7)
    assert counts[[1, 2, 5]].sum() == 0
    assert counts[[0, 3, 4, 6]].min() > 900, "uniform over the four unobserved items (1000 expected each)"
    assert set(sampler.sample(np.ones(500, dtype=np.int64), np.random.default_rng(1)).tolist()) == set(
        range(7)
    )
    np.testing.assert_array_equal(
        sampler.is_positive(np.array([0, 0, 1]), np.array([2, 3, 2])), [True, False, False]
    )


def test_negative_sampler_never_returns_positives_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    dense = rng.random((50, 30)) < 0.8  # most items are positives: rejection would need many rounds
    dense[:, 0] = False  # every user keeps at least one negative
    rows, cols = np.nonzero(dense)
    inter = Interactions.from_indices(rows, cols, IdMap(np.arange(50)), IdMap(np.arange(30)))
    sampler = NegativeSampler.from_interactions(inter)
    users = np.repeat(np.arange(50), 40)
    neg = sampler.sample(users, np.random.default_rng(7), n=3)  # (2000, 3)
    assert neg.shape == (2000, 3)
    assert not dense[users[:, None], neg].any()
    np.testing.assert_array_equal(neg, sampler.sample(users, np.random.default_rng(7), n=3))
    assert not np.array_equal(neg, sampler.sample(users, np.random.default_rng(8), n=3))
    # A CPU torch.Generator works as well, reproducibly.
    t1 = sampler.sample(users, torch.Generator().manual_seed(2))
    assert not dense[users, t1].any()
    np.testing.assert_array_equal(t1, sampler.sample(users, torch.Generator().manual_seed(2)))


def test_negative_sampler_rejects_full_rows_and_bad_csr() -> None:
    sampler = NegativeSampler(np.array([0, 3]), np.array([0, 1, 2]), n_items=3)
    with pytest.raises(DataError, match="user 0 has interacted with all 3 items"):
        sampler.sample(np.array([0]), np.random.default_rng(0))
    with pytest.raises(DataError, match="sorted"):
        NegativeSampler(np.array([0, 2]), np.array([2, 1]), n_items=3)


def test_sample_unobserved_counts_and_exclusion() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((40, 25)) < 0.3
    rows_all, cols_all = np.nonzero(dense)
    inter = Interactions.from_indices(rows_all, cols_all, IdMap(np.arange(40)), IdMap(np.arange(25)))
    rows = np.array([3, 0, 17, 3, 39])
    bpos, items = sample_unobserved(inter.indptr, inter.indices, rows, 25, 0.5, np.random.default_rng(1))
    expected = np.floor(0.5 * (25 - dense[rows].sum(axis=1))).astype(int)
    np.testing.assert_array_equal(np.bincount(bpos, minlength=len(rows)), expected)
    assert not dense[rows[bpos], items].any()
    assert len(set(zip(bpos.tolist(), items.tolist()))) == len(items), "distinct within a row"
    again = sample_unobserved(
        inter.indptr, inter.indices, rows, 25, 0.5, np.random.default_rng(1), chunk_cells=30
    )
    np.testing.assert_array_equal(again[1], items)  # chunking does not change the draw
    # The dense torch version: exact counts, only unobserved cells, reproducible.
    obs = torch.from_numpy(dense[rows])
    m1 = sample_unobserved_dense(obs, 0.5, torch.Generator().manual_seed(4))
    m2 = sample_unobserved_dense(obs, 0.5, torch.Generator().manual_seed(4))
    assert torch.equal(m1, m2) and not (m1 & obs).any()
    np.testing.assert_array_equal(m1.sum(dim=1).numpy(), expected)
    with pytest.raises(DataError, match="ratio=1.5"):
        sample_unobserved_dense(obs, 1.5, torch.Generator())


# -------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["bpr", "bpr-sparse", "multvae", "ials"])
def test_same_seed_bit_identical_other_seed_different(name: str) -> None:
    data = _blocks()
    users = np.arange(data.n_users)
    a = _create(name, FAST[name], random_state=5).fit(data)
    b = _create(name, FAST[name], random_state=5).fit(data)
    c = _create(name, FAST[name], random_state=6).fit(data)
    sa, sb, sc = a._state(), b._state(), c._state()
    assert sa.keys() == sb.keys()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    np.testing.assert_array_equal(a.recommend(users, 10)[0], b.recommend(users, 10)[0])
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa if k != "best_epoch")


def test_training_does_not_touch_global_generators() -> None:
    data = _blocks()
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    for name in ("bpr", "multvae", "ials"):
        create(name, FAST[name], random_state=1).fit(data)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]


def test_bad_params_name_the_parameter() -> None:
    data = _blocks()
    with pytest.raises(DataError, match="n_factors=0"):
        create("bpr", {"n_factors": 0}).fit(data)
    with pytest.raises(DataError, match="dropout=1.0"):
        create("multvae", {"dropout": 1.0}).fit(data)
    with pytest.raises(DataError, match="solver='svd'"):
        create("ials", {"solver": "svd"}).fit(data)
    with pytest.raises(DataError, match="device='tpu'"):
        create("bpr", {"device": "tpu"}).fit(data)
    with pytest.raises(DataError, match="optimizer must be one of adam, fused_adam, sparse_adam, sgd, got 'rmsprop'"):
        create("bpr", {"optimizer": "rmsprop"}).fit(data)
    with pytest.raises(DataError, match='optimizer="sparse_adam" does not train distributed'):
        create("bpr", {"optimizer": "sparse_adam"})._check_distributed(None, data)  # type: ignore[arg-type]


def test_bpr_sparse_adam_is_a_different_optimiser_on_sparse_gradients() -> None:
    data = _blocks(n_users=40, n_items=60, per_user=5)
    params = {**FAST["bpr"], "epochs": 2, "batch_size": 8}
    dense = create("bpr", params, random_state=3).fit(data)
    lazy = create("bpr", {**params, "optimizer": "sparse_adam"}, random_state=3).fit(data)
    mf_dense, mf_lazy = dense.modules_["mf"], lazy.modules_["mf"]
    assert not mf_dense.user.sparse and mf_lazy.user.sparse and mf_lazy.item.sparse and mf_lazy.item_bias.sparse
    # Same seed, same initial tables and batches; dense Adam keeps moving rows on momentum after their
    # batch while lazy Adam does not, so the end points differ.
    assert not torch.equal(mf_dense.user.weight, mf_lazy.user.weight)
    assert torch.isfinite(mf_lazy.item.weight).all()


# ------------------------------------------------------------------------------------------- iALS
def _dense_objective(x: np.ndarray, y: np.ndarray, p: np.ndarray, alpha: float, reg: float) -> float:
    c = 1.0 + alpha * p
    return float((c * (p - x @ y.T) ** 2).sum() + reg * ((x**2).sum() + (y**2).sum()))


def test_ials_cholesky_solves_the_normal_equations() -> None:
    data = _blocks(n_users=20, n_items=16, per_user=5)
    p = data.csr().toarray().astype(np.float64)  # (20, 16)
    alpha, reg = 3.0, 0.5
    model = IALS(n_factors=4, reg=reg, alpha=alpha, iterations=1, device="cpu", random_state=0)
    model.fit(data)
    fac = model.modules_["factors"]
    x, y = fac.user.double().numpy(), fac.item.double().numpy()
    # After the item step, each item's factors solve its ridge regression exactly (given the users).
    for i in range(data.n_items):
        c = 1.0 + alpha * p[:, i]
        a = x.T @ (c[:, None] * x) + reg * np.eye(4)
        np.testing.assert_allclose(y[i], np.linalg.solve(a, x.T @ (c * p[:, i])), rtol=1e-4, atol=1e-5)
    assert model.history_[0]["loss"] == pytest.approx(_dense_objective(x, y, p, alpha, reg), rel=1e-4)


def test_ials_cg_approaches_the_exact_solution() -> None:
    data = _blocks(n_users=40, n_items=24, per_user=6)
    exact = IALS(n_factors=6, reg=1.0, alpha=4.0, iterations=6, device="cpu", random_state=0).fit(data)
    cg = IALS(
        n_factors=6, reg=1.0, alpha=4.0, iterations=6, solver="cg", cg_steps=6, device="cpu", random_state=0
    ).fit(data)
    loss_exact, loss_cg = exact.history_[-1]["loss"], cg.history_[-1]["loss"]
    assert loss_cg == pytest.approx(loss_exact, rel=2e-3)
    losses = [row["loss"] for row in cg.history_]
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(losses)), (
        "ALS never increases the objective"
    )


# ------------------------------------------------------------------------------------------ Mult-VAE
def test_multvae_fold_in_matches_scores() -> None:
    data = _blocks()
    model = MultVAE(**FAST["multvae"], random_state=0).fit(data)
    users = np.array([0, 5, 9])
    rows = data.csr()[users]
    np.testing.assert_allclose(model.score_history(rows), model.score(users), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        model.score_history(rows.toarray() * 3.0), model.score(users), rtol=1e-5, atol=1e-5
    )
    new_user = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, data.n_items))
    assert model.score_history(new_user).shape == (1, data.n_items)
    with pytest.raises(DataError, match="columns"):
        model.score_history(np.zeros((1, 3)))


# -------------------------------------------------------------------------------------------- quality
@pytest.fixture(scope="module")
def clustered_split():
    from gan4rec.data.split import random_holdout
    from gan4rec.data.synthetic import make_synthetic

    # Few sharp taste clusters and a flat popularity curve: personal taste, not popularity, explains most.
    data = make_synthetic(
        300, 200, 12000, n_factors=8, mainstream_share=0.02, popularity_alpha=0.6, random_state=0
    )
    return random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=0)


QUALITY = {
    "bpr": {
        "n_factors": 32,
        "lr": 0.01,
        "l2": 1e-3,
        "epochs": 40,
        "batch_size": 256,
        "eval_every": 2,
        "patience": 3,
        "device": "cpu",
    },
    "multvae": {
        "hidden": 100,
        "latent": 32,
        "lr": 3e-3,
        "epochs": 60,
        "batch_size": 64,
        "total_anneal_steps": 500,
        "eval_every": 2,
        "patience": 5,
        "device": "cpu",
    },
    "ials": {"n_factors": 16, "reg": 10.0, "alpha": 1.0, "iterations": 10, "device": "cpu"},
}
QUALITY["bpr-sparse"] = {**QUALITY["bpr"], "optimizer": "sparse_adam"}


@pytest.mark.parametrize("name", ["bpr", "bpr-sparse", "multvae", "ials"])
def test_beats_toppop_on_clustered_data(name: str, clustered_split) -> None:
    s = clustered_split

    def ndcg(model) -> float:
        res = evaluate(model.score, s.train, s.test, ks=[10], metrics=["NDCG"], exclude=s.valid, device="cpu")
        return res.metrics["NDCG@10"]

    top = ndcg(create("toppop").fit(s.train))
    model = _create(name, QUALITY[name], random_state=0).fit(s.train, s.valid)
    assert ndcg(model) > top + 0.05
    # Validation chose an epoch, the model holds it, and a refit would pin it.
    best = model.best_epoch_
    assert best is not None and model.refit_params() == {model.epochs_param: best}
    chosen = next(row for row in model.history_ if row["epoch"] == best)
    valid_now = evaluate(model.score, s.train, s.valid, ks=[20], metrics=["NDCG"], device="cpu").metrics[
        "NDCG@20"
    ]
    assert valid_now == pytest.approx(chosen["valid_NDCG@20"], abs=1e-12)
