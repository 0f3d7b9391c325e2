"""Top-K metrics against hand-computed values, a brute-force reference, and their input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan4rec.errors import DataError
from gan4rec.evaluation.metrics import (
    ALL_METRICS,
    average_precision_at_k,
    catalog_metrics,
    catalog_metrics_from_counts,
    gini_index,
    hit_rate_at_k,
    item_coverage,
    metric_name,
    ndcg_at_k,
    novelty,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    recommendation_counts,
)

L2 = math.log2


def _row(*bits: int) -> np.ndarray:
    return np.array([bits], dtype=bool)


def _all(hits: np.ndarray, rel: int, k: int, recall: str = "test") -> dict[str, float]:
    """Every per-user metric of a one-user hit matrix, through ranking_metrics."""
    out = ranking_metrics(hits, np.array([rel]), [k], recall=recall)  # type: ignore[arg-type]
    return {name.split("@")[0]: float(v[0]) for name, v in out.items()}


def test_hand_case_two_hits_of_three_relevant() -> None:
    hits = _row(1, 0, 1, 0, 0)  # hits at ranks 1 and 3, |rel| = 3
    got = _all(hits, 3, 5)
    assert got["Precision"] == pytest.approx(2 / 5)  # 2 hits / K=5 = 0.4
    assert got["Recall"] == pytest.approx(2 / 3)  # 2 hits / |rel|=3
    # DCG = 1/log2(2) + 1/log2(4); IDCG over min(5, 3) = 3 hits: 1 + 1/log2(3) + 1/log2(4)
    assert got["NDCG"] == pytest.approx((1 + 1 / L2(4)) / (1 + 1 / L2(3) + 1 / L2(4)))
    # AP: Precision@1 = 1/1, Precision@3 = 2/3, divided by min(5, 3) = 3
    assert got["MAP"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert got["MRR"] == 1.0  # first hit at rank 1
    assert got["HitRate"] == 1.0
    # The single-metric functions agree.
    rel = np.array([3])
    assert precision_at_k(hits, 5)[0] == pytest.approx(0.4)
    assert recall_at_k(hits, rel, 5)[0] == pytest.approx(2 / 3)
    assert ndcg_at_k(hits, rel, 5)[0] == pytest.approx(got["NDCG"])
    assert average_precision_at_k(hits, rel, 5)[0] == pytest.approx(got["MAP"])
    assert reciprocal_rank_at_k(hits, 5)[0] == 1.0
    assert hit_rate_at_k(hits, 5)[0] == 1.0


def test_cut_off_shorter_than_the_list() -> None:
    hits = _row(1, 0, 1, 0, 0)  # read at K=2: only the hit at rank 1 counts, |rel| = 3
    got = _all(hits, 3, 2)
    assert got["Precision"] == pytest.approx(1 / 2)
    assert got["Recall"] == pytest.approx(1 / 3)
    assert got["NDCG"] == pytest.approx(1 / (1 + 1 / L2(3)))  # IDCG over min(2, 3) = 2 ranks
    assert got["MAP"] == pytest.approx((1 / 1) / 2)  # Precision@1 / min(2, 3)


def test_fewer_relevant_than_k() -> None:
    hits = _row(0, 1, 0, 0, 0)  # |rel| = 1 < K = 5, hit at rank 2
    got = _all(hits, 1, 5)
    assert got["Precision"] == pytest.approx(1 / 5)
    assert got["Recall"] == pytest.approx(1.0)  # 1 / 1
    assert got["NDCG"] == pytest.approx((1 / L2(3)) / 1.0)  # IDCG = 1/log2(2) = 1
    assert got["MAP"] == pytest.approx((1 / 2) / 1)  # Precision@2 = 1/2, / min(5, 1)
    assert got["MRR"] == pytest.approx(1 / 2)
    assert _all(hits, 1, 5, recall="min")["Recall"] == pytest.approx(1.0)  # min(5, 1) = 1 as well


def test_more_relevant_than_k_and_recall_min() -> None:
    hits = _row(1, 1, 0)  # |rel| = 10 > K = 3
    got = _all(hits, 10, 3)
    assert got["Recall"] == pytest.approx(2 / 10)
    assert _all(hits, 10, 3, recall="min")["Recall"] == pytest.approx(2 / 3)  # 2 / min(3, 10)
    assert got["NDCG"] == pytest.approx((1 + 1 / L2(3)) / (1 + 1 / L2(3) + 1 / L2(4)))  # IDCG over 3 ranks
    assert got["MAP"] == pytest.approx((1 / 1 + 2 / 2) / 3)  # P@1 = 1, P@2 = 1, / min(3, 10)
    assert recall_at_k(hits, np.array([10]), 3, mode="min")[0] == pytest.approx(2 / 3)


def test_no_hits_gives_zeros() -> None:
    got = _all(_row(0, 0, 0, 0), 2, 4)
    assert got == {m: 0.0 for m in ("Precision", "Recall", "NDCG", "MAP", "MRR", "HitRate")}


def test_mrr_and_hit_rate_depend_on_the_cut_off() -> None:
    hits = _row(0, 0, 0, 1)  # first hit at rank 4
    out = ranking_metrics(hits, np.array([1]), [3, 4])
    assert out["MRR@3"][0] == 0.0 and out["HitRate@3"][0] == 0.0
    assert out["MRR@4"][0] == pytest.approx(1 / 4) and out["HitRate@4"][0] == 1.0


def _reference(hits: np.ndarray, rel: np.ndarray, k: int) -> dict[str, list[float]]:
    """Textbook per-user loops, deliberately not vectorised, to check the cumulative-sum implementation."""
    out: dict[str, list[float]] = {m: [] for m in ("Precision", "Recall", "NDCG", "MAP", "MRR", "HitRate")}
    for row, r in zip(hits, rel):
        h = [bool(x) for x in row[:k]]
        n = sum(h)
        out["Precision"].append(n / k)
        out["Recall"].append(n / r)
        dcg = sum(1 / L2(i + 2) for i, x in enumerate(h) if x)
        idcg = sum(1 / L2(i + 2) for i in range(min(k, r)))
        out["NDCG"].append(dcg / idcg)
        ap, seen = 0.0, 0
        for i, x in enumerate(h):
            if x:
                seen += 1
                ap += seen / (i + 1)
        out["MAP"].append(ap / min(k, r))
        out["MRR"].append(next((1 / (i + 1) for i, x in enumerate(h) if x), 0.0))
        out["HitRate"].append(float(n > 0))
    return out


def test_vectorised_metrics_match_a_loop_reference() -> None:
    rng = np.random.default_rng(0)
    hits = rng.random((60, 12)) < 0.3
    rel = hits.sum(axis=1) + rng.integers(1, 15, size=60)  # always >= hits and >= 1
    out = ranking_metrics(hits, rel, [1, 5, 12])
    for k in (1, 5, 12):
        ref = _reference(hits, rel, k)
        for m, values in ref.items():
            np.testing.assert_allclose(out[metric_name(m, k)], values, rtol=1e-12, err_msg=f"{m}@{k}")
    # The single-metric functions give the same arrays.
    np.testing.assert_allclose(ndcg_at_k(hits, rel, 5), out["NDCG@5"], rtol=1e-12)
    np.testing.assert_allclose(average_precision_at_k(hits, rel, 5), out["MAP@5"], rtol=1e-12)
    np.testing.assert_array_equal(reciprocal_rank_at_k(hits, 5), out["MRR@5"])


def test_ranking_metrics_names_order_and_subset() -> None:
    hits = _row(1, 0)
    out = ranking_metrics(hits, np.array([1]), [2, 1], metrics=["NDCG", "Coverage"])
    assert list(out) == ["NDCG@2", "NDCG@1"]  # catalog names are left to catalog_metrics
    assert out["NDCG@2"].dtype == np.float64
    assert metric_name("HitRate", 20) == "HitRate@20"
    assert set(ALL_METRICS) == {
        "Precision", "Recall", "NDCG", "MAP", "MRR", "HitRate", "Coverage", "Gini", "Novelty"
    }


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: precision_at_k(_row(1, 0), 3), "exceeds"),
        (lambda: precision_at_k(_row(1, 0), 0), "positive integer"),
        (lambda: recall_at_k(_row(1, 1), np.array([1]), 2), "cannot hit more"),
        (lambda: recall_at_k(_row(0, 0), np.array([0]), 2), "at least one relevant"),
        (lambda: recall_at_k(_row(1, 0), np.array([1, 2]), 2), "one count per user"),
        (lambda: recall_at_k(_row(1, 0), np.array([1]), 2, mode="max"), "recall='max'"),  # type: ignore[arg-type]
        (lambda: ranking_metrics(_row(1, 0), np.array([1]), [1], metrics=["AUC"]), "unknown metric 'AUC'"),
        (lambda: precision_at_k(np.array([[0.5, 1.0]]), 1), "boolean"),
        (lambda: precision_at_k(np.array([1, 0], dtype=bool), 1), "2-D"),
    ],
)
def test_bad_input_raises_data_error(call, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment):
        call()


# ------------------------------------------------------------------------------------- catalog metrics
def test_catalog_metrics_hand_example() -> None:
    # 3 users' top-2 lists over 4 items; user 2 got only one item (-1 pads).
    lists = np.array([[0, 1], [0, 2], [0, -1]])
    counts = recommendation_counts(lists, 4)
    np.testing.assert_array_equal(counts, [3, 1, 1, 0])
    assert item_coverage(counts) == pytest.approx(3 / 4)  # items 0, 1, 2 of 4
    # Sorted counts [0, 1, 1, 3], n = 4, total 5: sum (2j - n - 1) c_j = -3*0 - 1*1 + 1*1 + 3*3 = 9
    assert gini_index(counts) == pytest.approx(9 / (4 * 5))
    # Train popularity: users per item [2, 1, 0, 4] of 4 train users -> p = [1/2, 1/4, 1/4 (unseen: 1/4), 1]
    # -log2 p = [1, 2, 2, 0]; slots: 3 x item 0, 1 x item 1, 1 x item 2 -> (3*1 + 2 + 2) / 5
    pop = np.array([2, 1, 0, 4])
    assert novelty(counts, pop, 4) == pytest.approx(7 / 5)

    got = catalog_metrics(lists, 4, [1, 2], train_item_users=pop, n_train_users=4)
    # K=1: every list starts with item 0 -> counts [3, 0, 0, 0]
    assert got["Coverage@1"] == pytest.approx(1 / 4)
    assert got["Gini@1"] == pytest.approx(3 / 4)  # one item takes every slot: (n - 1) / n
    assert got["Novelty@1"] == pytest.approx(1.0)  # -log2(1/2)
    assert got["Coverage@2"] == pytest.approx(3 / 4) and got["Novelty@2"] == pytest.approx(7 / 5)
    assert catalog_metrics_from_counts(counts, 2, train_item_users=pop, n_train_users=4, metrics=["Gini"]) == {
        "Gini@2": pytest.approx(9 / 20)
    }


def test_gini_is_zero_for_equal_exposure_and_nan_without_recommendations() -> None:
    assert gini_index(np.array([2, 2, 2])) == pytest.approx(0.0)
    assert math.isnan(gini_index(np.zeros(3, dtype=np.int64)))
    assert math.isnan(novelty(np.zeros(3, dtype=np.int64), np.array([1, 1, 1]), 2))
    assert item_coverage(np.zeros(3, dtype=np.int64)) == 0.0


def test_catalog_input_checks() -> None:
    with pytest.raises(DataError, match="out of range"):
        recommendation_counts(np.array([[0, 4]]), 4)
    with pytest.raises(DataError, match="non-negative integers"):
        gini_index(np.array([1.5, 2.0]))
    with pytest.raises(DataError, match="n_train_users=1"):
        novelty(np.array([1, 1]), np.array([2, 0]), 1)
