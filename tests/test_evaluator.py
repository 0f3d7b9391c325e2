"""Deterministic top-K and the batched full-ranking evaluator: hand cases, a brute-force reference, the
real CFGAN split with a popularity scorer, and the input checks."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gan4rec.evaluation.evaluator as evaluator_module
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.evaluation import PROTOCOL, EvalResult, evaluate, topk

L2 = math.log2
NINF = float("-inf")


# ------------------------------------------------------------------------------------------------ topk
def _reference_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Sort every row by (-score, index); -inf items become -1 padding."""
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for r, row in enumerate(scores):
        order = np.lexsort((np.arange(len(row)), -row))[:k]
        order = order[np.isfinite(row[order]) | (row[order] > 0)]
        out[r, : len(order)] = order
    return out


def test_topk_all_equal_scores_rank_lowest_indices_first() -> None:
    values, items = topk(torch.zeros(2, 1000), 5)  # the TopPop-on-cold-items case: one big tie
    assert items.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert values.tolist() == [[0.0] * 5] * 2


def test_topk_ties_straddling_the_cut() -> None:
    scores = torch.tensor([[1.0, 3.0, 3.0, 1.0, 3.0, NINF, 1.0]])
    _, items = topk(scores, 4)
    assert items.tolist() == [[1, 2, 4, 0]]  # three 3.0s by index, then the first 1.0 (index 0)
    _, items = topk(scores, 2)
    assert items.tolist() == [[1, 2]]


def test_topk_pads_masked_and_missing_items() -> None:
    values, items = topk(torch.tensor([NINF, 0.5, NINF, 0.5]), 6)  # 1-D in, 1-D out; k > n_items
    assert items.tolist() == [1, 3, -1, -1, -1, -1]
    assert values[:2].tolist() == [0.5, 0.5] and torch.isneginf(values[2:]).all()
    _, items = topk(torch.tensor([[float("inf"), 1.0, float("inf")]]), 3)  # +inf is a real score
    assert items.tolist() == [[0, 2, 1]]


def test_topk_matches_a_sort_reference_on_many_ties() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(50, 40)).astype(np.float32)  # heavy ties
    scores[rng.random(scores.shape) < 0.5] = NINF  # some rows keep fewer than k items
    scores[0] = rng.random(40)  # a tie-free row: the fast path mixes with the tie path in one batch
    for k in (1, 7, 25, 40, 45):
        values, items = topk(torch.from_numpy(scores), k)
        np.testing.assert_array_equal(items.numpy(), _reference_topk(scores, k), err_msg=f"k={k}")
        assert items.dtype == torch.int64 and values.dtype == torch.float32


def test_topk_accepts_numpy_and_integers_and_rejects_nan() -> None:
    values, items = topk(np.array([[1, 5, 5, 0]]), 3)
    assert items.tolist() == [[1, 2, 0]] and values.dtype == torch.float64
    assert topk(torch.zeros(3, 4), 0)[1].shape == (3, 0)
    with pytest.raises(DataError, match="NaN"):
        topk(torch.tensor([[0.0, float("nan")]]), 1)
    with pytest.raises(DataError, match="k=-1"):
        topk(torch.zeros(1, 3), -1)
    with pytest.raises(DataError, match="shape"):
        topk(torch.zeros(1, 2, 3), 1)


# ----------------------------------------------------------------------------------- tiny hand example
def _space(n_users: int, n_items: int) -> tuple[IdMap, IdMap]:
    return IdMap(np.arange(n_users) + 100), IdMap(np.arange(n_items) + 500)


def _inter(pairs: list[tuple[int, int]], maps: tuple[IdMap, IdMap]) -> Interactions:
    u = np.array([p[0] for p in pairs], dtype=np.int64)
    i = np.array([p[1] for p in pairs], dtype=np.int64)
    return Interactions.from_indices(u, i, *maps)


@pytest.fixture()
def tiny() -> tuple[Interactions, Interactions, np.ndarray]:
    """4 users x 6 items.

    train: u0 {0}, u1 {1, 2}, u2 {}, u3 {0}      test: u0 {1, 3, 5}, u1 {0}, u2 {}, u3 {}
    scores: u0 puts its own train item 0 on top, all else tied; every other user scores all zeros.
    """
    maps = _space(4, 6)
    train = _inter([(0, 0), (1, 1), (1, 2), (3, 0)], maps)
    test = _inter([(0, 1), (0, 3), (0, 5), (1, 0)], maps)
    scores = np.zeros((4, 6), dtype=np.float32)
    scores[0, 0] = 9.0
    return train, test, scores


def test_hand_example_full_protocol(tiny) -> None:
    train, test, scores = tiny
    res = evaluate(lambda u: scores[u], train, test, ks=[5], device="cpu")
    assert res.users.tolist() == [0, 1] and res.n_users == 2  # u2, u3 have no test item
    # u0: item 0 (train, top score) is excluded; ties -> [1, 2, 3, 4, 5]; test {1, 3, 5}
    #     hits [1, 0, 1, 0, 1], |rel| = 3
    # u1: train {1, 2} excluded, all tied -> [0, 3, 4, 5] + one pad; test {0}: hits [1, 0, 0, 0, 0], |rel| = 1
    pu = res.per_user
    np.testing.assert_allclose(pu["Precision@5"], [3 / 5, 1 / 5])  # the short list still divides by K
    np.testing.assert_allclose(pu["Recall@5"], [3 / 3, 1 / 1])
    ndcg0 = (1 + 1 / L2(4) + 1 / L2(6)) / (1 + 1 / L2(3) + 1 / L2(4))
    np.testing.assert_allclose(pu["NDCG@5"], [ndcg0, 1.0])
    np.testing.assert_allclose(pu["MAP@5"], [(1 / 1 + 2 / 3 + 3 / 5) / 3, 1.0])
    np.testing.assert_allclose(pu["MRR@5"], [1.0, 1.0])
    np.testing.assert_allclose(pu["HitRate@5"], [1.0, 1.0])
    assert res.metrics["NDCG@5"] == pytest.approx((ndcg0 + 1.0) / 2)
    # Catalog: lists [1,2,3,4,5] and [0,3,4,5] -> counts [1,1,1,2,2,2]; coverage 6/6
    assert res.metrics["Coverage@5"] == pytest.approx(1.0)
    # Gini: sorted [1,1,1,2,2,2], n=6, total 9: (-5-3-1)*1 + (1+3+5)*2 = 9 -> 9 / (6*9)
    assert res.metrics["Gini@5"] == pytest.approx(1 / 6)
    # Novelty: 3 train users; users per item [2,1,1,0,0,0] -> p = [2/3, 1/3, 1/3, 1/3 (unseen), 1/3, 1/3]
    # slots: item 0 once (-log2 2/3), the other 8 slots have -log2 1/3
    assert res.metrics["Novelty@5"] == pytest.approx((L2(3 / 2) + 8 * L2(3)) / 9)
    assert list(res.metrics)[:3] == ["Precision@5", "Recall@5", "NDCG@5"]


def test_recall_min_option(tiny) -> None:
    train, test, scores = tiny
    res = evaluate(lambda u: scores[u], train, test, ks=[2], recall="min", metrics=["Recall"], device="cpu")
    # u0 top-2 [1, 2]: 1 hit / min(2, 3); u1 top-2 [0, 3]: 1 hit / min(2, 1)
    np.testing.assert_allclose(res.per_user["Recall@2"], [1 / 2, 1.0])
    assert list(res.metrics) == ["Recall@2"]
    assert "min(K, |test items|) (recall='min')" in res.protocol["recall"]
    base = evaluate(lambda u: scores[u], train, test, ks=[2], metrics=["Recall"], device="cpu")
    np.testing.assert_allclose(base.per_user["Recall@2"], [1 / 3, 1.0])


def test_exclude_removes_validation_items(tiny) -> None:
    train, test, scores = tiny
    valid = _inter([(0, 2), (1, 3)], (train.user_map, train.item_map))
    res = evaluate(lambda u: scores[u], train, test, ks=[2], exclude=valid, metrics=["Precision"], device="cpu")
    # u0: without 0 (train) and 2 (valid) -> [1, 3]: 2 hits; u1: without 1, 2, 3 -> [0, 4]: 1 hit
    np.testing.assert_allclose(res.per_user["Precision@2"], [2 / 2, 1 / 2])
    as_list = evaluate(lambda u: scores[u], train, test, ks=[2], exclude=[valid], metrics=["Precision"],
                       device="cpu")
    np.testing.assert_array_equal(as_list.per_user["Precision@2"], res.per_user["Precision@2"])
    assert res.protocol["settings"]["n_exclude_sets"] == 1


def test_cold_test_items_count_as_misses_or_are_dropped() -> None:
    maps = _space(3, 5)
    # Item 4 is never in train: cold. u0 test {1, 4}; u1 test {4} only; u2 test {2}.
    train = _inter([(0, 0), (0, 2), (1, 1), (2, 0), (2, 3)], maps)
    test = _inter([(0, 1), (0, 4), (1, 4), (2, 2)], maps)
    pop = train.item_counts().astype(np.float64)  # a popularity scorer never ranks item 4 first

    def score(users: np.ndarray) -> np.ndarray:
        return np.tile(pop, (len(users), 1))

    kept = evaluate(score, train, test, ks=[1], metrics=["Recall", "HitRate"], device="cpu")
    # pop = [2, 1, 1, 1, 0]
    # u0: without train items 0, 2 -> [_, 1, _, 1, 0]: items 1 and 3 tie, 1 first -> hit; 1 of |{1, 4}| = 2
    # u1: without item 1 -> item 0 -> miss (its only test item is the cold item 4)
    # u2: without items 0, 3 -> [_, 1, 1, _, 0]: item 1 before its test item 2 -> miss
    assert kept.users.tolist() == [0, 1, 2]
    np.testing.assert_allclose(kept.per_user["Recall@1"], [1 / 2, 0.0, 0.0])
    dropped = evaluate(score, train, test, ks=[1], metrics=["Recall"], drop_cold_test=True, device="cpu")
    assert dropped.users.tolist() == [0, 2]  # u1's only test item was cold
    np.testing.assert_allclose(dropped.per_user["Recall@1"], [1.0, 0.0])  # u0: 1 of |{1}|
    assert dropped.protocol["settings"]["drop_cold_test"] is True
    assert "removed" in dropped.protocol["cold_test_items"]


def test_relevant_items_that_are_masked_count_as_misses_with_a_warning(caplog) -> None:
    maps = _space(1, 4)
    train = _inter([(0, 0)], maps)
    test = _inter([(0, 0), (0, 1)], maps)  # item 0 is both train and test: it can never be recommended
    with caplog.at_level(logging.WARNING, logger="gan4rec.evaluation.evaluator"):
        res = evaluate(lambda u: np.ones((len(u), 4)), train, test, ks=[3], metrics=["Recall"], device="cpu")
    assert res.metrics["Recall@3"] == pytest.approx(1 / 2)  # item 1 hit, item 0 a miss: 1 of |{0, 1}|
    assert "1 relevant test interactions (of 2)" in caplog.text


# -------------------------------------------------------------------------------- random-data checks
@pytest.fixture(scope="module")
def random_split() -> tuple[Interactions, Interactions, Interactions, np.ndarray]:
    rng = np.random.default_rng(7)
    n_users, n_items = 120, 90
    maps = _space(n_users, n_items)
    entries = rng.random((n_users, n_items)) < 0.15
    part = rng.random((n_users, n_items))
    u, i = np.nonzero(entries)
    p = part[u, i]
    train = Interactions.from_indices(u[p < 0.6], i[p < 0.6], *maps)
    valid = Interactions.from_indices(u[(p >= 0.6) & (p < 0.75)], i[(p >= 0.6) & (p < 0.75)], *maps)
    test = Interactions.from_indices(u[p >= 0.75], i[p >= 0.75], *maps)
    scores = rng.integers(0, 5, size=(n_users, n_items)).astype(np.float32)  # many ties on purpose
    return train, valid, test, scores


def _brute_force(train, valid, test, scores, k: int) -> dict[int, dict[str, float]]:
    """Per-user loops straight from the definitions, for comparison with the batched evaluator."""
    out = {}
    for user in range(train.n_users):
        rel = set(test.row(user).tolist())
        if not rel:
            continue
        seen = set(train.row(user).tolist()) | set(valid.row(user).tolist())
        cand = [j for j in range(train.n_items) if j not in seen]
        ranked = sorted(cand, key=lambda j: (-scores[user, j], j))[:k]
        h = [j in rel for j in ranked]
        dcg = sum(1 / L2(r + 2) for r, x in enumerate(h) if x)
        idcg = sum(1 / L2(r + 2) for r in range(min(k, len(rel))))
        ap = sum(sum(h[: r + 1]) / (r + 1) for r, x in enumerate(h) if x) / min(k, len(rel))
        out[user] = {"Precision": sum(h) / k, "Recall": sum(h) / len(rel), "NDCG": dcg / idcg, "MAP": ap}
    return out


def test_evaluator_matches_brute_force(random_split) -> None:
    train, valid, test, scores = random_split
    res = evaluate(lambda u: scores[u], train, test, ks=[10], exclude=[valid], batch_size=37, device="cpu")
    ref = _brute_force(train, valid, test, scores, 10)
    assert res.users.tolist() == sorted(ref)
    for m in ("Precision", "Recall", "NDCG", "MAP"):
        np.testing.assert_allclose(res.per_user[f"{m}@10"], [ref[u][m] for u in res.users], rtol=1e-12)
        assert res.metrics[f"{m}@10"] == pytest.approx(np.mean([ref[u][m] for u in ref]), rel=1e-12)


def test_batching_invariance_and_batch_sizes(random_split) -> None:
    train, _, test, scores = random_split
    seen_sizes: list[int] = []

    def score(users: np.ndarray) -> np.ndarray:
        seen_sizes.append(len(users))
        return scores[users]

    one = evaluate(score, train, test, batch_size=1, device="cpu")
    assert max(seen_sizes) == 1  # only (batch, n_items) blocks are ever scored
    seen_sizes.clear()
    big = evaluate(score, train, test, batch_size=1000, device="cpu")
    assert seen_sizes == [len(big.users)]
    np.testing.assert_array_equal(one.users, big.users)
    assert one.per_user.keys() == big.per_user.keys()
    for name in one.per_user:
        np.testing.assert_array_equal(one.per_user[name], big.per_user[name], err_msg=name)
    assert one.metrics == big.metrics


def test_numpy_torch_and_integer_scores_agree(random_split) -> None:
    train, _, test, scores = random_split
    cached = torch.from_numpy(scores.copy())
    before = cached.clone()
    as_np = evaluate(lambda u: scores[u], train, test, device="cpu")
    as_torch = evaluate(lambda u: cached[torch.from_numpy(u)], train, test, device="cpu")
    as_int = evaluate(lambda u: scores[u].astype(np.int64), train, test, device="cpu")
    # A (stride-0) view into a cached tensor must come back untouched after masking.
    view = evaluate(lambda u: cached[5].expand(len(u), -1), train, test, users=[5], device="cpu")
    assert torch.equal(cached, before) and view.n_users == 1
    for other in (as_torch, as_int):
        assert other.metrics == as_np.metrics
        for name in as_np.per_user:
            np.testing.assert_array_equal(other.per_user[name], as_np.per_user[name])


def test_user_subset(random_split) -> None:
    train, _, test, scores = random_split
    full = evaluate(lambda u: scores[u], train, test, ks=[5], device="cpu")
    pick = full.users[[3, 1, 10]]
    sub = evaluate(lambda u: scores[u], train, test, ks=[5], users=pick, device="cpu")
    np.testing.assert_array_equal(sub.users, np.sort(pick))
    pos = np.searchsorted(full.users, sub.users)
    np.testing.assert_array_equal(sub.per_user["NDCG@5"], full.per_user["NDCG@5"][pos])
    assert sub.protocol["settings"]["user_subset"] is True


def test_result_json_protocol_and_logging(random_split, caplog) -> None:
    train, _, test, scores = random_split
    with caplog.at_level(logging.INFO, logger="gan4rec.evaluation.evaluator"):
        res = evaluate(lambda u: scores[u], train, test, ks=(20, 5), device="cpu")
    assert isinstance(res, EvalResult)
    assert re.search(r"\d+ users/s", caplog.text)
    assert res.protocol["settings"]["ks"] == [5, 20]
    assert res.protocol["settings"]["train_fingerprint"] == train.fingerprint()
    for key in ("relevant", "ties", "users", "validation", "average_precision"):
        assert res.protocol[key] == PROTOCOL[key]
    text = json.dumps(res.to_json(per_user=True), allow_nan=False)
    back = json.loads(text)
    assert back["metrics"]["NDCG@20"] == pytest.approx(res.metrics["NDCG@20"])
    assert len(back["per_user"]["MRR@5"]) == res.n_users == len(back["users"])
    assert "per_user" not in res.to_json()
    assert res.seconds > 0
    with pytest.raises(ValueError):
        res.per_user["NDCG@5"][0] = 1.0  # read-only results


def test_protocol_is_documented_in_the_module_docstring() -> None:
    doc = " ".join((evaluator_module.__doc__ or "").split())
    for key, rule in PROTOCOL.items():
        assert f"{key}: {rule}" in doc, key


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ks": [0]}, "ks contains 0"),
        ({"ks": []}, "ks is empty"),
        ({"metrics": ["NDCG@10"]}, "unknown metric 'NDCG@10'"),
        ({"recall": "all"}, "recall='all'"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"users": [10_000]}, "users contains index 10000"),
        ({"users": [2]}, "no user has a relevant test item among the given users"),
        ({"device": "tpu9"}, "device='tpu9'"),
    ],
)
def test_bad_arguments(tiny, kwargs, fragment: str) -> None:
    train, test, scores = tiny
    with pytest.raises(DataError, match=re.escape(fragment)):
        evaluate(lambda u: scores[u], train, test, **kwargs)


def test_bad_inputs(tiny) -> None:
    train, test, scores = tiny
    other = _inter([(0, 1)], _space(4, 7))
    with pytest.raises(DataError, match="test does not share"):
        evaluate(lambda u: scores[u], train, other)
    with pytest.raises(DataError, match=re.escape("exclude[0] does not share")):
        evaluate(lambda u: scores[u], train, test, exclude=[other])
    with pytest.raises(DataError, match="train is a ndarray"):
        evaluate(lambda u: scores[u], scores, test)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=re.escape("shape (2, 5) for 2 users; expected (2, 6)")):
        evaluate(lambda u: scores[u][:, :5], train, test)
    bad = scores.copy()
    bad[1, 4] = np.nan
    with pytest.raises(DataError, match="NaN scores for user index 1"):
        evaluate(lambda u: bad[u], train, test)
    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="CUDA is not available"):
            evaluate(lambda u: scores[u], train, test, device="cuda")


def test_import_gan4rec_does_not_import_torch() -> None:
    code = "import sys, gan4rec; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(random_split) -> None:
    train, valid, test, scores = random_split
    cpu = evaluate(lambda u: scores[u], train, test, exclude=valid, device="cpu")
    gpu = evaluate(lambda u: torch.from_numpy(scores[u]).cuda(), train, test, exclude=valid, device="cuda")
    assert cpu.metrics == gpu.metrics
    _, items = topk(torch.zeros(3, 5000, device="cuda"), 4)
    assert items.tolist() == [[0, 1, 2, 3]] * 3


# ------------------------------------------------------------------------------------ real CFGAN split
def _load_cfgan(paths: tuple[Path, Path]) -> tuple[Interactions, Interactions]:
    tr = np.loadtxt(paths[0], usecols=(0, 1), dtype=np.int64)  # (80000, 2) user item
    te = np.loadtxt(paths[1], usecols=(0, 1), dtype=np.int64)  # (19963, 2)
    user_map = IdMap(np.unique(np.concatenate([tr[:, 0], te[:, 0]])))
    item_map = IdMap(np.unique(np.concatenate([tr[:, 1], te[:, 1]])))
    train = Interactions.from_arrays(tr[:, 0], tr[:, 1], user_map=user_map, item_map=item_map)
    test = Interactions.from_arrays(te[:, 0], te[:, 1], user_map=user_map, item_map=item_map)
    return train, test


def test_top_pop_on_the_cfgan_split_matches_published_values(cfgan_split) -> None:
    train, test = _load_cfgan(cfgan_split)
    pop = train.item_counts().astype(np.float32)  # (n_items,), same scores for every user

    res = evaluate(lambda u: np.broadcast_to(pop, (len(u), len(pop))), train, test, ks=[20], batch_size=256)
    assert res.n_users == 943
    assert res.metrics["NDCG@20"] == pytest.approx(0.213, abs=0.002)
    assert res.metrics["Precision@20"] == pytest.approx(0.156, abs=0.002)
    assert 0.0 < res.metrics["Coverage@20"] < 0.1 and res.metrics["Gini@20"] > 0.9  # TopPop is concentrated


def test_a_long_evaluation_announces_itself(random_split, caplog, monkeypatch) -> None:
    import gan4rec._progress as progress_mod

    monkeypatch.setattr(progress_mod, "LONG_STEP_SECONDS", 0.0)  # every evaluation counts as long
    train, _, test, scores = random_split
    with caplog.at_level(logging.INFO, logger="gan4rec.evaluation.evaluator"):
        res = evaluate(lambda u: scores[u], train, test, ks=5, device="cpu")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"evaluating {res.n_users} users x {train.n_items} items: started"
    assert messages[1].startswith(f"evaluated {res.n_users} users x {train.n_items} items on cpu in ")
