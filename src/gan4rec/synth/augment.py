"""Augmenting sparse users' training rows with extra items (issue 20, item 5): the pieces of the study.

The study (pre-registered in ``benchmarks/results/synth-augment-prereg.md``, run by
``benchmarks/synth_augment.py``) induces a sparse stratum, adds ``m`` items per sparse user to the
*training matrix only* by one of three rules, refits EASE, and scores every user from their real items::

    train (after the split)           sparse stratum induced          one arm's training matrix
         i0 i1 i2 i3 i4 i5                i0 i1 i2 i3 i4 i5               i0 i1 i2 i3 i4 i5
    u0 [ x  x  x  .  x  x ]   ->   u0 [ x  .  x  .  .  x ]   ->   u0 [ x  a  x  .  a  x ]   a: added (m = 2)
    u1 [ x  .  x  x  x  . ]        u1 [ x  .  x  x  x  . ]        u1 [ x  .  x  x  x  . ]   other users as is

The rules, each returning ``{user: added item indices}`` (never an item the user already has):
:func:`gan_additions` (nearest synthetic user by Jaccard, its items most popular in the synthetic data
first), :func:`popularity_additions` (drawn without replacement in proportion to train popularity) and
:func:`score_additions` (the top items of a score matrix, e.g. UserKNN's).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = [
    "add_items",
    "gan_additions",
    "induce_sparse",
    "n_additions",
    "popularity_additions",
    "score_additions",
]


def induce_sparse(
    train: Interactions, rng: np.random.Generator, frac: float = 0.2, keep: int = 5,
) -> tuple[Interactions, np.ndarray]:
    """Pick ``round(frac * n_users)`` users with items and keep only ``keep`` random train items of each.

    Returns
    -------
    sparse_train, sparse_users
        The cut training matrix (same maps) and the chosen users, ascending. A chosen user with at most
        ``keep`` items keeps them all.
    """
    if not 0 < frac <= 1 or keep < 1:
        raise DataError(f"frac={frac!r}, keep={keep!r}; expected 0 < frac <= 1 and keep >= 1")
    active = np.flatnonzero(train.user_counts() > 0)
    users = np.sort(rng.choice(active, size=round(frac * len(active)), replace=False))
    mask = np.ones(train.nnz, dtype=bool)
    for u in users:
        lo, hi = int(train.indptr[u]), int(train.indptr[u + 1])
        if hi - lo > keep:
            drop = rng.choice(hi - lo, size=hi - lo - keep, replace=False)
            mask[lo + drop] = False
    return train.subset(mask), users


def n_additions(train_degrees: np.ndarray, keep: int = 5, cap: int = 20) -> int:
    """``m``: the median of the positive train degrees minus ``keep``, capped at ``cap`` (at least 0)."""
    deg = np.asarray(train_degrees)
    deg = deg[deg > 0]
    return int(min(max(int(np.median(deg)) - keep, 0), cap)) if len(deg) else 0


def _jaccard_nearest(queries: sp.csr_matrix, synth: sp.csr_matrix) -> np.ndarray:
    """Index of the synthetic row of highest Jaccard similarity to each query row (lowest index on ties)."""
    q = (queries > 0).astype(np.float64).tocsr()
    s = (synth > 0).astype(np.float64).tocsr()
    inter = (q @ s.T).toarray()  # (n_q, n_s)
    union = np.asarray(q.sum(axis=1)) + np.asarray(s.sum(axis=1)).T - inter  # (n_q, n_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = np.where(union > 0, inter / union, 0.0)
    return np.argmax(jac, axis=1)


def gan_additions(train: Interactions, users: np.ndarray, synth: Interactions, m: int) -> dict[int, np.ndarray]:
    """Per user, up to ``m`` items of the Jaccard-nearest synthetic user that they lack.

    Items are taken most popular in the synthetic data first (ties: lower item index first); fewer than
    ``m`` when the nearest synthetic user has fewer new items.
    """
    if synth.n_items != train.n_items:
        raise DataError(f"synthetic data has {synth.n_items} items, the training data {train.n_items}")
    users = np.asarray(users, dtype=np.int64)
    s_csr = synth.csr()
    nearest = _jaccard_nearest(train.csr()[users], s_csr)
    pop = synth.item_counts()
    out: dict[int, np.ndarray] = {}
    for u, j in zip(users.tolist(), nearest.tolist(), strict=True):
        cand = np.setdiff1d(s_csr.indices[s_csr.indptr[j] : s_csr.indptr[j + 1]], train.row(u))
        order = np.lexsort((cand, -pop[cand]))  # popularity descending, then item index
        out[u] = cand[order][:m].astype(np.int64)
    return out


def popularity_additions(train: Interactions, users: np.ndarray, m: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Per user, ``m`` items they lack, drawn without replacement in proportion to train popularity."""
    pop = train.item_counts().astype(np.float64)
    out: dict[int, np.ndarray] = {}
    for u in np.asarray(users, dtype=np.int64).tolist():
        w = pop.copy()
        w[train.row(u)] = 0.0
        k = min(m, int(np.count_nonzero(w)))
        out[u] = np.sort(rng.choice(len(w), size=k, replace=False, p=w / w.sum())) if k else np.zeros(0, np.int64)
    return out


def score_additions(train: Interactions, users: np.ndarray, scores: np.ndarray, m: int) -> dict[int, np.ndarray]:
    """Per user, the ``m`` items they lack with the highest ``scores`` row (``(len(users), n_items)``)."""
    users = np.asarray(users, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(users), train.n_items):
        raise DataError(f"scores have shape {scores.shape}, expected ({len(users)}, {train.n_items})")
    out: dict[int, np.ndarray] = {}
    for r, u in enumerate(users.tolist()):
        s = scores[r].copy()
        s[train.row(u)] = -np.inf
        order = np.lexsort((np.arange(len(s)), -s))  # score descending, then item index
        top = order[:m]
        out[u] = np.sort(top[np.isfinite(s[top])]).astype(np.int64)
    return out


def add_items(train: Interactions, additions: dict[int, np.ndarray]) -> Interactions:
    """``train`` with ``additions`` set to 1 (same maps and features; ratings and timestamps dropped)."""
    n_add = sum(len(v) for v in additions.values())
    rows = np.repeat(np.fromiter(additions.keys(), dtype=np.int64, count=len(additions)),
                     [len(v) for v in additions.values()])
    cols = np.concatenate([np.asarray(v, dtype=np.int64) for v in additions.values()]) if n_add else np.zeros(0, np.int64)
    extra = sp.csr_matrix((np.ones(n_add), (rows, cols)), shape=train.shape)
    csr = ((train.csr() + extra) > 0).astype(np.float32).tocsr()
    csr.sort_indices()
    return Interactions(csr.indptr, csr.indices, train.user_map, train.item_map,
                        user_features=train.user_features, item_features=train.item_features)
