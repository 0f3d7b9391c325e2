"""The augmentation study's pieces (gan4rec.synth.augment) and benchmarks/synth_augment.py on tiny data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.synth import augment

ROOT = Path(__file__).resolve().parents[1]


def _inter(rows: list[list[int]], n_items: int) -> Interactions:
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    return Interactions.from_indices(users, items, IdMap(np.arange(len(rows))), IdMap(np.arange(n_items)))


def _bench():
    spec = importlib.util.spec_from_file_location("bench_synth_augment", ROOT / "benchmarks" / "synth_augment.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_induce_sparse_keeps_five_of_the_chosen_users_only():
    data = make_synthetic(50, 40, 1000, random_state=0)
    cut, users = augment.induce_sparse(data, np.random.default_rng(0))
    assert len(users) == round(0.2 * np.count_nonzero(data.user_counts()))
    before, after = data.user_counts(), cut.user_counts()
    assert np.array_equal(after[users], np.minimum(before[users], 5))
    rest = np.setdiff1d(np.arange(data.n_users), users)
    assert np.array_equal(after[rest], before[rest])
    for u in users:  # kept items are the user's own
        assert set(cut.row(u)) <= set(data.row(u))
    again, users2 = augment.induce_sparse(data, np.random.default_rng(0))
    assert np.array_equal(users, users2) and np.array_equal(again.indices, cut.indices)


def test_n_additions_is_median_minus_keep_capped():
    assert augment.n_additions(np.array([0, 10, 12, 14])) == 7
    assert augment.n_additions(np.array([100, 100])) == 20
    assert augment.n_additions(np.array([3, 3])) == 0


def test_gan_additions_take_nearest_synthetic_user_popular_first():
    train = _inter([[0, 1], [5]], 8)
    # synthetic user 1 is nearest to user 0 (Jaccard 2/4); item 3 is most popular in the synthetic data
    synth = _inter([[6, 7], [0, 1, 2, 3], [3, 4], [3, 7]], 8)
    out = augment.gan_additions(train, np.array([0]), synth, m=5)
    assert out[0].tolist() == [3, 2]
    assert augment.gan_additions(train, np.array([0]), synth, m=1)[0].tolist() == [3]
    with pytest.raises(DataError):
        augment.gan_additions(train, np.array([0]), _inter([[0]], 3), m=1)


def test_popularity_and_score_additions_never_repeat_own_items():
    data = make_synthetic(30, 25, 300, random_state=1)
    users = np.arange(0, 30, 3)
    pop = augment.popularity_additions(data, users, 6, np.random.default_rng(0))
    scores = np.random.default_rng(1).random((len(users), data.n_items))
    top = augment.score_additions(data, users, scores, 6)
    for u, r in zip(users, range(len(users))):
        own = set(data.row(u))
        assert len(pop[u]) == min(6, data.n_items - len(own)) and not own & set(pop[u])
        assert len(set(pop[u])) == len(pop[u])
        lack = [i for i in np.argsort(-scores[r]) if i not in own][:6]
        assert sorted(lack) == top[u].tolist()
    with pytest.raises(DataError):
        augment.score_additions(data, users, scores[:, :3], 6)


def test_add_items_sets_ones_and_keeps_maps():
    train = _inter([[0, 1], [2]], 4)
    out = augment.add_items(train, {0: np.array([3, 1]), 1: np.array([], dtype=np.int64)})
    assert out.row(0).tolist() == [0, 1, 3] and out.row(1).tolist() == [2]
    assert out.item_map is train.item_map and out.user_map is train.user_map


def test_benchmark_seed_and_analysis_on_tiny_data():
    """Every arm evaluated on the same users; the tests are computed and the verdict is a bool."""
    bench = _bench()
    data = make_synthetic(60, 80, 1500, random_state=2)
    gan = {"steps": 3, "hidden": 16, "noise": 4, "batch_size": 16}
    runs = [bench.run_seed(data, s, gan_params=gan) for s in (0, 1)]
    r = runs[0]
    assert set(r["per_user_test"]) == set(bench.ARMS)
    assert all(len(v) == len(r["users"]) for v in r["per_user_test"].values())
    assert r["l2_all"] in bench.L2_GRID and r["l2_sparse"] in bench.L2_GRID
    assert sum(r["sparse_mask"]) == r["n_sparse"] == 12
    an = bench.analyse(runs)
    assert set(an["primary"]) == {"ease", "ease_tuned", "popularity", "knn"}
    for v in an["primary"].values():
        assert v["wilcoxon"]["p"] <= v["p_holm"] <= 1
    lo, hi = an["secondary"]["bootstrap_95"]
    assert lo <= an["secondary"]["mean_difference"] <= hi
    assert isinstance(an["secondary"]["lose_nothing"], bool)
    assert "sparse NDCG@20" in bench.table({"dataset": "tiny", "analysis": an})
