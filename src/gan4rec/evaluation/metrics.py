"""Top-K ranking metrics as vectorised numpy functions on hit matrices.

Per-user metrics take a boolean hit matrix ``hits`` of shape ``(n_users, L)``: row ``u`` is user ``u``'s
ranked top-``L`` list and ``hits[u, r]`` says whether the item at rank ``r + 1`` is relevant to ``u``.
``n_relevant[u]`` is the number of items relevant to ``u`` (its test items). Any ``K <= L`` can be read
off the same matrix because a top-``K`` list is the first ``K`` columns of a top-``L`` list. Each function
returns one float64 value per user; averaging is the caller's business.

Catalog metrics (coverage, Gini, novelty) describe all users' top-``K`` lists together. They take the
recommendation counts of every catalog item (:func:`recommendation_counts`).

Notes
-----
With ``h_k`` the hits at ranks ``1..K``, ``R = n_relevant`` and ``m = min(K, R)``:

- ``Precision@K = sum(h) / K`` (a list shorter than ``K`` still divides by ``K``).
- ``Recall@K = sum(h) / R`` (``recall="test"``, as in the CFGAN paper) or ``sum(h) / m`` (``recall="min"``).
- ``NDCG@K = DCG / IDCG`` with binary gains, ``DCG = sum_k h_k / log2(k + 1)`` and
  ``IDCG = sum_{k=1..m} 1 / log2(k + 1)``.
- ``MAP@K``: ``AP@K = sum_k h_k * Precision@k / m``; MAP is its mean over users.
- ``MRR@K = 1 / rank`` of the first hit within ``K``, else 0.
- ``HitRate@K = 1`` if any of the first ``K`` items is a hit, else 0.
- ``Coverage@K`` = fraction of catalog items in at least one user's top-``K`` list.
- ``Gini@K`` = Gini index of the recommendation counts ``c`` over all ``n`` catalog items, sorted
  ascending ``c_(1) <= ... <= c_(n)``: ``G = sum_j (2j - n - 1) c_(j) / (n * sum_j c_(j))``. 0 when every
  item is recommended equally often, ``(n - 1) / n`` when one item takes every slot.
- ``Novelty@K`` = mean self-information of the recommended items, over every recommendation slot:
  ``sum_i c_i * -log2(p_i) / sum_i c_i`` where ``p_i`` = (train users who interacted with ``i``) /
  (train users, i.e. users with at least one train interaction). An item nobody interacted with in train
  gets ``p_i = 1 / n_train_users`` (as if one user had), so its self-information stays finite.

Examples
--------
>>> hits = np.array([[True, False, True, False, False]])
>>> precision_at_k(hits, 5).tolist(), recall_at_k(hits, np.array([3]), 5).round(4).tolist()
([0.4], [0.6667])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from gan4rec.errors import DataError

__all__ = [
    "ALL_METRICS",
    "CATALOG_METRICS",
    "RANKING_METRICS",
    "RecallMode",
    "average_precision_at_k",
    "catalog_metrics",
    "catalog_metrics_from_counts",
    "gini_index",
    "hit_rate_at_k",
    "item_coverage",
    "metric_name",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "recommendation_counts",
]

RecallMode = Literal["test", "min"]

#: Per-user metrics, in report order. ``MAP`` is the per-user AP whose mean is MAP.
RANKING_METRICS: tuple[str, ...] = ("Precision", "Recall", "NDCG", "MAP", "MRR", "HitRate")
#: List-level metrics over all users' top-K lists.
CATALOG_METRICS: tuple[str, ...] = ("Coverage", "Gini", "Novelty")
ALL_METRICS: tuple[str, ...] = RANKING_METRICS + CATALOG_METRICS

_RECALL_MODES = ("test", "min")


def metric_name(metric: str, k: int) -> str:
    """The report name of ``metric`` at cut-off ``k``, e.g. ``metric_name("NDCG", 20) == "NDCG@20"``."""
    return f"{metric}@{k}"


# ---------------------------------------------------------------------------------------------- checks
def _check_hits(hits: np.ndarray) -> np.ndarray:
    arr = np.asarray(hits)
    if arr.ndim != 2:
        raise DataError(f"hits must be a 2-D (users, ranks) matrix, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "biu" or (arr.size and not np.isin(arr, (0, 1)).all()):
            raise DataError(f"hits must be boolean (or 0/1), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def _check_k(k: int, n_ranks: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k={k!r}; expected a positive integer")
    if k > n_ranks:
        raise DataError(f"k={k} exceeds the {n_ranks} ranks of the hit matrix; rank at least k items")
    return int(k)


def _check_relevant(n_relevant: np.ndarray, hits: np.ndarray) -> np.ndarray:
    rel = np.asarray(n_relevant)
    if rel.shape != (hits.shape[0],):
        raise DataError(f"n_relevant has shape {rel.shape}, expected ({hits.shape[0]},) (one count per user)")
    if rel.dtype.kind not in "iu":
        raise DataError(f"n_relevant must hold integers, got dtype {rel.dtype}")
    rel = rel.astype(np.int64)
    if rel.size and rel.min() < 1:
        u = int(np.argmin(rel))
        raise DataError(f"n_relevant[{u}] = {rel[u]}; every evaluated user needs at least one relevant item")
    n_hits = hits.sum(axis=1)
    if (n_hits > rel).any():
        u = int(np.flatnonzero(n_hits > rel)[0])
        raise DataError(
            f"user row {u} has {n_hits[u]} hits but n_relevant[{u}] = {rel[u]}; a ranked list cannot hit "
            "more items than are relevant"
        )
    return rel


def _check_recall(recall: str) -> str:
    if recall not in _RECALL_MODES:
        raise DataError(f"recall={recall!r}; expected 'test' (hits / |test|) or 'min' (hits / min(K, |test|))")
    return recall


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks ``1..n``, float64."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


# ------------------------------------------------------------------------------------ per-user metrics
def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@K per user: hits in the top ``k`` divided by ``k``."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    return h[:, :k].sum(axis=1, dtype=np.float64) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int, *, mode: RecallMode = "test") -> np.ndarray:
    """Recall@K per user: hits over ``n_relevant`` (``mode="test"``) or over ``min(k, n_relevant)``."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    rel = _check_relevant(n_relevant, h)
    denom = rel if _check_recall(mode) == "test" else np.minimum(rel, k)
    return h[:, :k].sum(axis=1, dtype=np.float64) / denom


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@K per user with binary gains; the ideal list holds ``min(k, n_relevant)`` hits."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    rel = _check_relevant(n_relevant, h)
    disc = _discounts(k)
    dcg = h[:, :k] @ disc  # (n_users,)
    idcg = np.cumsum(disc)[np.minimum(rel, k) - 1]
    return dcg / idcg


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@K per user: sum of Precision@i over hit ranks ``i <= k``, divided by ``min(k, n_relevant)``."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    rel = _check_relevant(n_relevant, h)
    hk = h[:, :k]
    prec = np.cumsum(hk, axis=1, dtype=np.float64) / np.arange(1, k + 1)  # (n_users, k)
    return (prec * hk).sum(axis=1) / np.minimum(rel, k)


def reciprocal_rank_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """RR@K per user: ``1 / rank`` of the first hit within the top ``k``, 0 without a hit."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    hk = h[:, :k]
    first = np.argmax(hk, axis=1)  # 0 when no hit; masked out below
    return np.where(hk.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """HitRate@K per user: 1.0 if any of the top ``k`` items is relevant, else 0.0."""
    h = _check_hits(hits)
    k = _check_k(k, h.shape[1])
    return np.asarray(h[:, :k].any(axis=1), dtype=np.float64)


def ranking_metrics(
    hits: np.ndarray,
    n_relevant: np.ndarray,
    ks: Iterable[int],
    *,
    metrics: Sequence[str] | None = None,
    recall: RecallMode = "test",
) -> dict[str, np.ndarray]:
    """Every requested per-user metric at every cut-off, sharing one pass of cumulative sums.

    Parameters
    ----------
    hits
        ``(n_users, L)`` boolean, ranked top-``L`` lists; ``L >= max(ks)``.
    n_relevant
        ``(n_users,)`` integer, relevant items per user (``>= 1`` and ``>=`` the user's hits).
    ks
        Cut-offs.
    metrics
        Names among :data:`RANKING_METRICS`; ``None`` means all of them. Catalog names are ignored here.
    recall
        ``"test"``: Recall = hits / n_relevant; ``"min"``: hits / min(K, n_relevant).

    Returns
    -------
    dict
        ``"NDCG@20" -> (n_users,) float64`` and so on, in ``(metric, k)`` order.
    """
    h = _check_hits(hits)
    ks_ = [_check_k(k, h.shape[1]) for k in ks]
    rel = _check_relevant(n_relevant, h)
    _check_recall(recall)
    wanted = list(RANKING_METRICS) if metrics is None else [m for m in metrics if m in RANKING_METRICS]
    unknown = [m for m in (metrics or ()) if m not in ALL_METRICS]
    if unknown:
        raise DataError(f"unknown metric {unknown[0]!r}; expected names among {', '.join(ALL_METRICS)}")
    if not ks_ or not wanted:
        return {}

    kmax = max(ks_)
    hk = h[:, :kmax]
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    disc = _discounts(kmax)
    # Cumulative quantities along the ranks: column k-1 holds the value for cut-off k.
    cum_hits = np.cumsum(hk, axis=1, dtype=np.float64)  # (n_users, kmax)
    cum_dcg = np.cumsum(hk * disc, axis=1)  # (n_users, kmax)
    cum_ap = np.cumsum(hk * (cum_hits / ranks), axis=1)  # (n_users, kmax)
    ideal = np.cumsum(disc)  # (kmax,)
    any_hit = hk.any(axis=1)
    first = np.where(any_hit, np.argmax(hk, axis=1), kmax)  # 0-based rank of the first hit, kmax if none

    out: dict[str, np.ndarray] = {}
    for m in wanted:
        for k in ks_:
            n_hits = cum_hits[:, k - 1]
            m_k = np.minimum(rel, k)
            if m == "Precision":
                v = n_hits / k
            elif m == "Recall":
                v = n_hits / (rel if recall == "test" else m_k)
            elif m == "NDCG":
                v = cum_dcg[:, k - 1] / ideal[m_k - 1]
            elif m == "MAP":
                v = cum_ap[:, k - 1] / m_k
            elif m == "MRR":
                v = np.where(first < k, 1.0 / (first + 1.0), 0.0)
            else:  # HitRate
                v = (first < k).astype(np.float64)
            out[metric_name(m, k)] = v
    return out


# ------------------------------------------------------------------------------------ catalog metrics
def recommendation_counts(topk_items: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """How many top-``k`` lists each catalog item appears in.

    ``topk_items`` is ``(n_users, L)`` item indices, ``-1`` marking padding (lists shorter than ``L``);
    ``k`` defaults to ``L``. Returns ``(n_items,)`` int64.
    """
    idx = np.asarray(topk_items)
    if idx.ndim != 2 or idx.dtype.kind not in "iu":
        raise DataError(f"topk_items must be a 2-D integer matrix, got shape {idx.shape} dtype {idx.dtype}")
    if k is not None:
        idx = idx[:, : _check_k(k, idx.shape[1])]
    flat = idx.reshape(-1)
    flat = flat[flat >= 0]
    if flat.size and flat.max() >= n_items:
        raise DataError(f"item index {int(flat.max())} in topk_items is out of range for {n_items} items")
    return np.bincount(flat, minlength=n_items).astype(np.int64)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1 or c.dtype.kind not in "iu" or (c.size and c.min() < 0):
        raise DataError("recommendation counts must be a 1-D array of non-negative integers over the catalog")
    if c.size == 0:
        raise DataError("recommendation counts are empty; the catalog needs at least one item")
    return c.astype(np.int64)


def item_coverage(counts: np.ndarray) -> float:
    """Fraction of the catalog recommended at least once (``counts`` from :func:`recommendation_counts`)."""
    c = _check_counts(counts)
    return float(np.count_nonzero(c)) / c.size


def gini_index(counts: np.ndarray) -> float:
    """Gini index of recommendation counts over the whole catalog (0 = equal; see the module notes).

    NaN when nothing was recommended.
    """
    c = np.sort(_check_counts(counts)).astype(np.float64)
    n, total = c.size, c.sum()
    if total == 0:
        return float("nan")
    j = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * j - n - 1.0) @ c) / (n * total))


def novelty(counts: np.ndarray, train_item_users: np.ndarray, n_train_users: int) -> float:
    """Mean self-information ``-log2(p_i)`` over all recommendation slots (see the module notes).

    Parameters
    ----------
    counts
        ``(n_items,)`` recommendation counts.
    train_item_users
        ``(n_items,)`` number of distinct train users who interacted with each item.
    n_train_users
        Users with at least one train interaction.

    NaN when nothing was recommended.
    """
    c = _check_counts(counts)
    pop = np.asarray(train_item_users)
    if pop.shape != c.shape or pop.dtype.kind not in "iu":
        raise DataError(f"train_item_users has shape {pop.shape}, expected integer counts of shape {c.shape}")
    if n_train_users < 1 or (pop.size and pop.max() > n_train_users):
        raise DataError(f"n_train_users={n_train_users}; expected >= 1 and >= every item's train user count")
    total = c.sum()
    if total == 0:
        return float("nan")
    # Unseen items count as seen by one user so that -log2(p) stays finite.
    p = np.maximum(pop, 1).astype(np.float64) / n_train_users
    return float((c @ -np.log2(p)) / total)


def catalog_metrics(
    topk_items: np.ndarray,
    n_items: int,
    ks: Iterable[int],
    *,
    train_item_users: np.ndarray,
    n_train_users: int,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Coverage, Gini and Novelty at every cut-off from all users' top-``L`` lists (``-1`` = padding)."""
    wanted = list(CATALOG_METRICS) if metrics is None else [m for m in metrics if m in CATALOG_METRICS]
    out: dict[str, float] = {}
    for k in ks:
        counts = recommendation_counts(topk_items, n_items, k)
        out.update(
            catalog_metrics_from_counts(
                counts, k, train_item_users=train_item_users, n_train_users=n_train_users, metrics=wanted
            )
        )
    return out


def catalog_metrics_from_counts(
    counts: np.ndarray,
    k: int,
    *,
    train_item_users: np.ndarray,
    n_train_users: int,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Catalog metrics at cut-off ``k`` from recommendation counts accumulated over all top-``k`` lists."""
    wanted = list(CATALOG_METRICS) if metrics is None else [m for m in metrics if m in CATALOG_METRICS]
    out: dict[str, float] = {}
    for m in wanted:
        if m == "Coverage":
            out[metric_name(m, k)] = item_coverage(counts)
        elif m == "Gini":
            out[metric_name(m, k)] = gini_index(counts)
        elif m == "Novelty":
            out[metric_name(m, k)] = novelty(counts, train_item_users, n_train_users)
    return out
