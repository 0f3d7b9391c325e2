"""The synthetic generator: exact sizes, determinism, and real collaborative structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.data.synthetic import (
    GENRE_NAMES,
    ML100K_RATING_PROBS,
    SYNTHETIC_SIZES,
    generate_synthetic,
    genre_names,
    make_synthetic,
)
from gan4rec.errors import DataError


@pytest.fixture(scope="module")
def ml100k_like() -> Interactions:
    return make_synthetic()  # the defaults: ML-100K sizes, seed 0


def test_presets() -> None:
    assert SYNTHETIC_SIZES == {
        "ml-100k": (943, 1682, 100_000),
        "ml-1m": (6040, 3706, 1_000_209),
        "ml-20m": (138_493, 26_744, 20_000_263),
    }


def test_default_is_ml100k_sized_and_well_formed(ml100k_like: Interactions) -> None:
    d = ml100k_like
    assert d.shape == (943, 1682) and d.nnz == 100_000
    assert d.user_map.ids.tolist() == list(range(1, 944)) and d.item_map.ids[[0, -1]].tolist() == [1, 1682]
    counts = d.user_counts()
    assert counts.min() >= 20 and counts.max() <= 1682 // 2
    # CSR rows strictly increasing: no duplicate (user, item) pair.
    steps = np.diff(d.indices.astype(np.int64))
    row_starts = d.indptr[1:-1]
    inner = np.ones(d.nnz - 1, dtype=bool)
    inner[row_starts[(row_starts > 0) & (row_starts < d.nnz)] - 1] = False
    assert (steps[inner] > 0).all()
    # Ratings 1..5 with ML-100K's histogram (cut at quantiles, so equal up to ties at the cuts).
    ratings = np.asarray(d.ratings)
    assert set(np.unique(ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    np.testing.assert_allclose(np.bincount(ratings.astype(int))[1:] / d.nnz, ML100K_RATING_PROBS, atol=2e-4)
    # Timestamps: int64 seconds within the 215 days from 1997-09-20.
    t = np.asarray(d.timestamps)
    assert t.dtype == np.int64 and t.min() >= 874_724_710 and t.max() < 874_724_710 + 215 * 86_400
    genres = d.item_features["genres"]
    assert genres.shape == (1682, 18) and genres.dtype == np.uint8 and set(np.unique(genres)) <= {0, 1}
    assert genres.sum(axis=1).min() >= 1  # every item has a genre
    assert d.user_features == {}


def test_same_seed_same_data_other_seed_other_data() -> None:
    kw = {"n_users": 300, "n_items": 500, "n_interactions": 12_000}
    a = make_synthetic(**kw, random_state=7)
    b = make_synthetic(**kw, random_state=np.random.default_rng(7))
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.ratings, b.ratings)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.item_features["genres"], b.item_features["genres"])
    c = make_synthetic(**kw, random_state=8)
    assert c.fingerprint() != a.fingerprint() and c.nnz == a.nnz
    # The global numpy RNG is neither used nor disturbed.
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    make_synthetic(**kw, random_state=7)
    assert np.random.random() == before


def _recall_at_20(train: sp.csr_matrix, test: sp.csr_matrix, scores: np.ndarray) -> float:
    scores = np.where(train.toarray() > 0, -np.inf, scores)  # (n_users, n_items), seen items excluded
    top = np.argpartition(-scores, 20, axis=1)[:, :20]  # (n_users, 20)
    truth = test.toarray() > 0
    hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    n_test = truth.sum(axis=1)
    has = n_test > 0
    return float((hits[has] / n_test[has]).mean())


def test_item_knn_clearly_beats_popularity(ml100k_like: Interactions) -> None:
    # Random per-user 80/20 holdout; item-item cosine on the training part vs. training popularity.
    d = ml100k_like
    held_out = np.random.default_rng(0).random(d.nnz) < 0.2
    train = d.subset(~held_out).csr()
    test = d.subset(held_out).csr()
    pop = np.asarray(train.sum(axis=0)).ravel()  # (n_items,)
    norm = np.sqrt(np.maximum(pop, 1.0))
    sim = (train.T @ train).toarray() / norm[:, None] / norm[None, :]  # (n_items, n_items) cosine
    np.fill_diagonal(sim, 0.0)
    knn = _recall_at_20(train, test, np.asarray(train @ sim))
    popularity = _recall_at_20(train, test, np.broadcast_to(pop, train.shape).astype(np.float64))
    # About 0.28 vs 0.18 at seed 0 (real ML-100K: 0.29 vs 0.17).
    assert popularity > 0.08, "popularity should be a meaningful baseline"
    assert knn > popularity + 0.05 and knn > 1.3 * popularity


def test_item_popularity_is_long_tailed(ml100k_like: Interactions) -> None:
    counts = np.sort(ml100k_like.item_counts())[::-1]
    top10 = counts[: len(counts) // 10].sum() / counts.sum()
    assert 0.35 < top10 < 0.7  # ML-100K: 0.43
    assert np.median(counts) < counts.mean() / 2  # a long tail
    assert counts[0] < ml100k_like.n_users  # nobody's item is seen by everyone


def test_ratings_follow_taste_and_genres_follow_users() -> None:
    g = generate_synthetic(n_users=600, n_items=1000, n_interactions=40_000, random_state=3)
    d = g.interactions
    users, items = d.user_index(), d.indices
    affinity = g.user_taste[users, g.item_cluster[items]]  # the user's taste for the item's cluster
    ratings = np.asarray(d.ratings)
    assert ratings[affinity > 0.2].mean() > ratings[affinity < 0.02].mean() + 0.8
    assert np.allclose(g.user_taste.sum(axis=1), 1.0, atol=1e-5) and g.user_taste.shape == (600, 30)
    assert g.item_popularity.shape == (1000,) and np.isclose(g.item_popularity.sum(), 1.0)
    # Users' genre profiles are more concentrated than when their items are shuffled among users (the KL
    # ratio is 2.0 on real ML-100K, about 2.1 here).
    genres = d.item_features["genres"].astype(np.float64)

    def mean_kl(item_idx: np.ndarray) -> float:
        x = sp.csr_matrix((np.ones(len(item_idx)), (users, item_idx)), shape=d.shape)
        prof = np.asarray(x @ genres)
        prof /= prof.sum(axis=1, keepdims=True)
        overall = genres[item_idx].sum(axis=0) / genres[item_idx].sum()
        return float(np.mean(np.sum(prof * np.log(np.maximum(prof, 1e-12) / overall), axis=1)))

    shuffled = np.random.default_rng(0).permutation(items)
    assert mean_kl(items) > 1.6 * mean_kl(shuffled)


def test_timestamps_are_sessions_and_returns(ml100k_like: Interactions) -> None:
    t = np.asarray(ml100k_like.timestamps)
    span = np.maximum.reduceat(t, ml100k_like.indptr[:-1]) - np.minimum.reduceat(t, ml100k_like.indptr[:-1])
    assert np.median(span) < 86_400  # most users rate in one sitting, as in MovieLens
    assert (span > 30 * 86_400).mean() > 0.1  # and some come back over months


def test_exact_counts_at_odd_sizes() -> None:
    tiny = make_synthetic(3, 4, 6, random_state=0)  # every user holds exactly half the catalogue
    assert tiny.user_counts().tolist() == [2, 2, 2] and tiny.nnz == 6
    one = make_synthetic(50, 40, 600, n_factors=1, n_genres=25, random_state=2)
    assert one.nnz == 600 and one.item_features["genres"].shape == (40, 25)
    dense = make_synthetic(20, 30, 20 * 15, random_state=5)  # every user at the cap: top-up must finish
    assert dense.user_counts().tolist() == [15] * 20
    assert make_synthetic(100, 200, 3000, min_user_interactions=25, random_state=1).user_counts().min() >= 25


def test_genre_names() -> None:
    assert genre_names(18) == list(GENRE_NAMES) and GENRE_NAMES[3] == "Children"
    assert genre_names(20)[-2:] == ["genre_19", "genre_20"] and genre_names(2) == ["Action", "Adventure"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, r"n_users=0; expected an integer >= 1"),
        ({"n_interactions": 10**9}, r"n_interactions=1000000000; expected between \d+ and 793,?\d*"),
        ({"n_interactions": 100}, r"n_interactions=100; expected between 943 and"),
        ({"rating_probs": (0.5, 0.5)}, r"rating_probs=\(0.5, 0.5\); expected 5 non-negative shares"),
        ({"mainstream_share": 1.5}, r"mainstream_share=1.5; expected a number in \[0.0, 1.0\]"),
        ({"min_user_interactions": 0}, r"min_user_interactions=0; expected an integer in \[1, 841\]"),
        ({"n_factors": 2.5}, r"n_factors=2.5; expected an integer >= 1"),
        ({"start_time": 1.5}, r"start_time=1.5; expected an integer"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        make_synthetic(**kwargs)
