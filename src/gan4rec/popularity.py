"""Popularity bias of recommendation lists: where in the item-popularity distribution they land.

Items are sorted by training popularity (distinct users), most popular first, and cut into
:data:`POPULARITY_BUCKETS` groups of equal size. For training data and for each model's top-K lists this
module gives the share of interactions (recommendations) per group, the mean popularity of what is
consumed (recommended), the long-tail share and the catalogue coverage. :func:`gan4rec.compare.compare`
records them per run and averages them per model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = [
    "POPULARITY_BUCKETS",
    "popularity_buckets",
    "popularity_summary",
    "recommend_counts",
    "run_popularity",
    "train_popularity",
]

#: Item-popularity buckets of the popularity-bias statistics (equal numbers of items, most popular first).
POPULARITY_BUCKETS = 10

_RECOMMEND_BATCH = 1024
# Share of the least popular items counted as the long tail (buckets 3..10 of 10 = the bottom 80 %).
_TAIL_FROM_BUCKET = 2


def recommend_counts(model: Any, users: np.ndarray, k: int, exclude: Any) -> tuple[np.ndarray, float]:
    """How often each item is in the top-``k`` of ``users``, and the wall time of recommending them all."""
    counts = np.zeros(model.n_items, dtype=np.int64)  # (n_items,)
    t0 = time.perf_counter()
    for start in range(0, len(users), _RECOMMEND_BATCH):
        items, _ = model.recommend(users[start : start + _RECOMMEND_BATCH], k, exclude_seen=True, exclude=exclude)
        flat = items.reshape(-1)  # (batch * k,)
        counts += np.bincount(flat[flat >= 0], minlength=model.n_items)
    return counts, time.perf_counter() - t0


def popularity_buckets(train: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bucket of each item (0 = most popular tenth of the items) and the items' training popularity."""
    pop = np.asarray(train.item_counts(), dtype=np.int64)  # (n_items,)
    n = len(pop)
    order = np.argsort(-pop, kind="stable")  # (n_items,) most popular first, ties by item index
    buckets = np.empty(n, dtype=np.int64)
    buckets[order] = np.arange(n, dtype=np.int64) * POPULARITY_BUCKETS // max(n, 1)
    return buckets, pop


def _n_train_users(train: Any) -> int:
    return max(int(np.count_nonzero(train.user_counts())), 1)


def train_popularity(buckets: np.ndarray, pop: np.ndarray, train: Any) -> dict[str, Any]:
    """Share of training interactions per bucket, their mean item popularity and long-tail share."""
    total = max(int(pop.sum()), 1)
    share = np.bincount(buckets, weights=pop, minlength=POPULARITY_BUCKETS) / total  # (n_buckets,)
    n_users = _n_train_users(train)
    return {
        "share": share,
        # A random training interaction's item: what users consume, the reference for recommendations.
        "mean_popularity": float((pop.astype(np.float64) ** 2).sum() / total / n_users),
        "tail_share": float(share[_TAIL_FROM_BUCKET:].sum()),
    }


def run_popularity(counts: np.ndarray, buckets: np.ndarray, pop: np.ndarray, train: Any) -> dict[str, Any]:
    """The same statistics for one run's recommendations (``counts`` per item), plus catalogue coverage."""
    total = max(int(counts.sum()), 1)
    share = np.bincount(buckets, weights=counts, minlength=POPULARITY_BUCKETS) / total  # (n_buckets,)
    return {
        "share": share,
        "coverage": float(np.count_nonzero(counts) / max(len(counts), 1)),
        "mean_popularity": float((counts * pop.astype(np.float64)).sum() / total / _n_train_users(train)),
        "tail_share": float(share[_TAIL_FROM_BUCKET:].sum()),
    }


def popularity_summary(train: list[dict[str, Any]], per_model: dict[str, list[dict[str, Any]]], k: int) -> dict[str, Any]:
    """The ``popularity`` key of a comparison: training and per-model statistics averaged over runs."""
    def avg(rows: list[dict[str, Any]], key: str) -> Any:
        values = [np.asarray(r[key], dtype=np.float64) for r in rows]
        return np.mean(values, axis=0)

    return {
        "k": k,
        "n_buckets": POPULARITY_BUCKETS,
        "buckets": "items sorted by training popularity (distinct users), most popular first, cut into equal-size "
                   "groups; share = fraction of training interactions / of recommendations in each group",
        "mean_popularity": "mean over (recommended or training) items of the share of training users who "
                           "interacted with the item",
        "tail": f"the {100 - 100 * _TAIL_FROM_BUCKET // POPULARITY_BUCKETS}% least popular items",
        "train_share": avg(train, "share"),
        "train_mean_popularity": float(avg(train, "mean_popularity")),
        "train_tail_share": float(avg(train, "tail_share")),
        "models": {
            name: {"share": avg(rows, "share"), "coverage": float(avg(rows, "coverage")),
                   "mean_popularity": float(avg(rows, "mean_popularity")), "tail_share": float(avg(rows, "tail_share"))}
            for name, rows in per_model.items()
        },
    }
