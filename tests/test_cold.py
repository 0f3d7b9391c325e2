"""Cold-start protocol: the cold_items split's invariants and the warm / cold / overall evaluation tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.data.features import feature_matrix
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit, Split, cold_items, make_split
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.evaluation.cold import COLD_TASKS, cold_tasks, evaluate_cold, masked_scores

L2 = 1 / math.log2(3)  # discount of rank 2


def _data(seed: int = 0) -> Interactions:
    data = make_synthetic(n_users=60, n_items=50, n_interactions=900, random_state=seed)
    words = sp.random(50, 30, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    return Interactions(
        data.indptr, data.indices, data.user_map, data.item_map,
        item_features={**data.item_features, "words": words},
    )


# ---------------------------------------------------------------------------------------------- split
def test_cold_items_partitions_items_and_interactions() -> None:
    data = _data()
    s = cold_items(data, random_state=3)
    assert isinstance(s, ColdSplit) and isinstance(s, Split) and s.spec["kind"] == "cold-items"
    cv, ct = set(s.cold_valid_items.tolist()), set(s.cold_test_items.tolist())
    warm = set(s.warm_items.tolist())
    assert not (cv & ct) and not (warm & (cv | ct)) and warm | cv | ct == set(range(50))
    assert len(cv | ct) == 10 and len(cv) == 5 and len(ct) == 5  # 20 % of 50 items, then 50/50
    # Nothing of a cold item in train; every interaction of a cold item in its held-out part.
    cold = s.cold_mask()
    assert not cold[s.train.indices].any()
    assert s.cold_valid.nnz == int(np.isin(data.indices, s.cold_valid_items).sum())
    assert s.cold_test.nnz == int(np.isin(data.indices, s.cold_test_items).sum())
    assert not s.cold_mask("test")[s.valid.indices].any() and not s.cold_mask("valid")[s.test.indices].any()
    # Warm records 80/10/10 (round half up) and parts that add up to the data.
    n_warm = int((~cold[data.indices]).sum())
    assert s.warm_test.nnz == math.floor(0.1 * n_warm + 0.5) == s.warm_valid.nnz
    assert s.train.nnz + s.valid.nnz + s.test.nnz == data.nnz
    keys = [set(zip(p.user_index().tolist(), p.indices.tolist(), strict=True)) for p in (s.train, s.valid, s.test)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    # Same item map: the cold items' features are in train.
    assert s.train.item_map is data.item_map
    X = feature_matrix(s.train, "item", ["words"])
    assert (X != data.item_features["words"]).nnz == 0
    # Refit data: warm validation only, cold-validation items stay cold.
    full = s.full_train()
    assert full.nnz == s.train.nnz + s.warm_valid.nnz and not cold[full.indices].any()


def test_cold_items_is_seeded_and_fingerprinted() -> None:
    data = _data()
    a, b = cold_items(data, random_state=5), cold_items(data, random_state=5)
    assert a == b and a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.cold_test_items, b.cold_test_items)
    np.testing.assert_array_equal(a.train.indices, b.train.indices)
    c = cold_items(data, random_state=6)
    assert c.fingerprint != a.fingerprint and c.spec["items"] != a.spec["items"]
    # The features are part of the split's identity: other content, other fingerprint.
    other = Interactions(data.indptr, data.indices, data.user_map, data.item_map,
                         item_features={"words": data.item_features["words"] * 2})
    assert cold_items(other, random_state=5).fingerprint != a.fingerprint
    # Selectable by name, like the other splits.
    assert make_split(data, "cold_items", random_state=5) == a
    with pytest.raises(DataError, match="takes no argument 'k'"):
        make_split(data, "cold-items", k=1)


def test_cold_items_rounding_and_arguments() -> None:
    data = _data()
    s = cold_items(data, cold_frac=0.25, cold_valid_frac=0.3, test_frac=0.2, valid_frac=0.0, random_state=1)
    n_cold = math.floor(0.25 * 50 + 0.5)  # 13
    assert len(s.cold_valid_items) == math.floor(0.3 * n_cold + 0.5) == 4 and len(s.cold_test_items) == 9
    assert s.warm_valid.nnz == 0 and s.valid is not None and s.valid.nnz == s.cold_valid.nnz
    with pytest.raises(DataError, match="cold_frac=0 makes no cold item"):
        cold_items(data, cold_frac=0)
    with pytest.raises(DataError, match="test_frac \\+ valid_frac"):
        cold_items(data, test_frac=0.6, valid_frac=0.5)
    with pytest.raises(DataError, match="cold_frac=1.5 is out of range"):
        cold_items(data, cold_frac=1.5)


def test_cold_split_checks_its_item_sets() -> None:
    data = _data()
    s = cold_items(data, random_state=2)
    with pytest.raises(DataError, match="do not match spec\\['items'\\]"):
        ColdSplit(s.train, s.valid, s.test, s.spec, cold_valid_items=s.cold_test_items,
                  cold_test_items=s.cold_valid_items)
    with pytest.raises(DataError, match="train holds an interaction on a cold item"):
        ColdSplit.build(data, None, None, cold_valid_items=[], cold_test_items=s.cold_test_items)
    with pytest.raises(DataError, match="overlap"):
        ColdSplit.build(s.train, None, None, cold_valid_items=[1, 2], cold_test_items=[2])


# ---------------------------------------------------------------------------------------------- tasks
def _tiny() -> tuple[ColdSplit, np.ndarray]:
    """3 users x 7 items: i0-i3 warm, i4 cold-valid, i5 and i6 cold-test.

    ::

             i0 i1 i2 i3 i4 i5 i6
        u0 [ T  T  V  E  .  E  . ]
        u1 [ T  E  T  .  V  .  E ]
        u2 [ .  T  .  T  .  E  . ]
    """
    users, items = IdMap(np.arange(3)), IdMap(np.arange(7))

    def part(pairs: list[tuple[int, int]]) -> Interactions:
        u, i = zip(*pairs, strict=True)
        return Interactions.from_indices(np.array(u), np.array(i), users, items)

    train = part([(0, 0), (0, 1), (1, 0), (1, 2), (2, 1), (2, 3)])
    valid = part([(0, 2), (1, 4)])
    test = part([(0, 3), (1, 1), (0, 5), (2, 5), (1, 6)])
    split = ColdSplit.build(train, valid, test, cold_valid_items=[4], cold_test_items=[5, 6], spec={"source": "tiny"})
    scores = np.array([
        [0.9, 0.8, 0.7, 0.1, 0.95, 0.5, 0.99],
        [0.9, 0.2, 0.3, 0.4, 0.6, 0.1, 0.05],
        [0.3, 0.9, 0.2, 0.85, 0.5, 0.8, 0.75],
    ], dtype=np.float32)
    return split, scores


def test_three_tasks_on_a_hand_made_example() -> None:
    split, scores = _tiny()
    res = evaluate_cold(lambda u: scores[u], split, ks=2, metrics=["Precision", "Recall", "NDCG"], device="cpu")
    assert list(res) == list(COLD_TASKS)
    # warm: i4-i6 masked, u0's train and warm-valid items excluded -> u0 ranks [i3]: hit at 1;
    # u1 ranks [i3, i1]: hit at 2; u2 has no warm test item.
    warm = res["warm"]
    assert warm.users.tolist() == [0, 1]
    assert warm.metrics["Precision@2"] == pytest.approx(0.5) and warm.metrics["Recall@2"] == pytest.approx(1.0)
    np.testing.assert_allclose(warm.per_user["NDCG@2"], [1.0, L2])
    # cold: only i5, i6 ranked -> u0 [i6, i5] hit at 2, u1 [i5, i6] hit at 2, u2 [i5, i6] hit at 1.
    cold = res["cold"]
    assert cold.users.tolist() == [0, 1, 2]
    np.testing.assert_allclose(cold.per_user["NDCG@2"], [L2, L2, 1.0])
    assert cold.metrics["Recall@2"] == pytest.approx(1.0)
    # overall: i4 masked -> u0 [i6, i5 | i3]: 1 of 2; u1 [i3, i1 | i5, i6]: 1 of 2; u2 [i5, i6]: 1 of 1.
    over = res["overall"]
    np.testing.assert_allclose(over.per_user["Recall@2"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(over.per_user["NDCG@2"], [L2 / (1 + L2), L2 / (1 + L2), 1.0])
    assert over.metrics["NDCG@2"] == pytest.approx((2 * L2 / (1 + L2) + 1) / 3)


def test_validation_tasks_mask_the_cold_test_items() -> None:
    split, scores = _tiny()
    res = evaluate_cold(lambda u: scores[u], split, part="valid", ks=2, metrics=["NDCG"], device="cpu")
    # warm valid: u0 ranks [i2, i3] (cold masked): hit at 1. cold valid: u1 ranks [i4]: hit at 1.
    np.testing.assert_allclose(res["warm"].per_user["NDCG@2"], [1.0])
    np.testing.assert_allclose(res["cold"].per_user["NDCG@2"], [1.0])
    # overall valid (i5, i6 masked): u0 [i4, i2]: hit at 2; u1 [i4, i3]: hit at 1.
    np.testing.assert_allclose(res["overall"].per_user["NDCG@2"], [L2, 1.0])
    masks = {t: m for t, (_, m) in cold_tasks(split, "valid").items()}
    assert np.flatnonzero(masks["overall"]).tolist() == [5, 6]
    assert np.flatnonzero(~masks["cold"]).tolist() == [4]


def test_masking_never_recommends_masked_items() -> None:
    split, scores = _tiny()
    tasks = cold_tasks(split, "test")
    assert np.flatnonzero(tasks["warm"][1]).tolist() == [4, 5, 6]
    assert np.flatnonzero(~tasks["cold"][1]).tolist() == [5, 6]
    assert np.flatnonzero(tasks["overall"][1]).tolist() == [4]
    out = masked_scores(lambda u: scores[u], tasks["overall"][1])(np.array([0, 2]))
    assert np.isneginf(out[:, 4]).all() and np.isfinite(np.delete(out, 4, axis=1)).all()
    assert scores[0, 4] == np.float32(0.95)  # the model's own array is untouched
    import torch

    out_t = masked_scores(lambda u: torch.from_numpy(scores[u]), tasks["warm"][1])(np.array([1]))
    assert torch.isneginf(out_t[0, 4:]).all() and scores[1, 4] == np.float32(0.6)


def test_cold_evaluation_errors() -> None:
    split, scores = _tiny()
    with pytest.raises(DataError, match="split must be a ColdSplit"):
        evaluate_cold(lambda u: scores[u], Split(split.train, split.valid, split.test, {"kind": "x"}))
    with pytest.raises(DataError, match="train holds interactions on cold items"):
        evaluate_cold(lambda u: scores[u], split, train=split.train.__class__.from_indices(
            np.array([0]), np.array([5]), split.train.user_map, split.train.item_map))
    with pytest.raises(DataError, match="train holds valid interactions"):
        evaluate_cold(lambda u: scores[u], split, part="valid", train=split.full_train())
    with pytest.raises(DataError, match="task 'hot' is unknown"):
        evaluate_cold(lambda u: scores[u], split, tasks=["hot"])
    with pytest.raises(DataError, match="part='train'"):
        cold_tasks(split, "train")  # type: ignore[arg-type]


def test_cold_items_end_to_end_with_a_content_scorer() -> None:
    """A content scorer (item-item cosine over the features) runs on all three tasks of a synthetic split."""
    data = _data(1)
    s = cold_items(data, random_state=0)
    X = feature_matrix(s.train, "item", l2_normalize=True)
    sim = (X @ X.T).toarray()  # (n_items, n_items)
    hist = s.train.csr()

    def content(users: np.ndarray) -> np.ndarray:
        return np.asarray(hist[users] @ sim)

    res = evaluate_cold(content, s, ks=(5, 10), device="cpu")
    assert set(res) == {"warm", "cold", "overall"}
    for r in res.values():
        assert 0.0 <= r.metrics["NDCG@10"] <= 1.0 and len(r.per_user["NDCG@10"]) == r.n_users
    assert res["cold"].n_users == len(np.unique(s.cold_test.user_index()))
