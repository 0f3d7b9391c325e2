"""Why does a hybrid score a cold item this way? Attributions of its score to the item's content features.

A cold item (no training interaction, or a new item known only by its features) is scored by a hybrid
(:class:`~gan4rec.models.hybrid.common.HybridRecommender`) from its content row ``f`` over the columns of
``features_``. :func:`explain_cold` gives each NONZERO column of ``f`` a contribution, named through the
model's ``feature_names_`` (``"genres=Action"``, ``"text=neural"``), and returns the ``top`` by absolute
value. The method depends on how the score uses the content:

``"exact"``
    Scores that are linear in the weighted content row ``c = w(f)`` (``w``: the model's TF-IDF weighting
    and unit length, :func:`~gan4rec.models.hybrid.common.weigh_rows`):

    - ridge-map: ``score = s * u . (c W + b) + o``, so column ``j`` contributes ``s * c_j (W u)_j`` and
      ``rest = s * u . b + o`` does not depend on the content;
    - content-knn: ``score = s * sum over the item's neighbours n in u's history of c . c_n + o``, so
      column ``j`` contributes ``s * c_j * sum_n c_{n,j}`` and ``rest = o`` (the neighbours are the item's
      ``k`` most similar warm items, fixed by its content as a whole).

    The contributions of all nonzero columns add up to ``score - rest`` (``total``).
``"occlusion"``
    Other hybrids (GAR, DropoutNet, content-CFGAN, side-info EASE): column ``j`` contributes the score
    minus the score of the same row with ``f_j`` set to 0, all columns scored in batches through
    :meth:`~gan4rec.models.hybrid.common.HybridRecommender.score_new_items`. ``baseline`` is the score of
    an all-zero row; contributions need not add up to ``score - baseline`` (the score is not linear).

``s`` and ``o`` are the model's ``cold_scale`` and ``cold_offset``: the score explained is the calibrated
one, as :meth:`score_new_items` (and :meth:`score` for a cold item of the map) gives it. A WARM item can be
explained too, as the score it would have from its content alone (a warning says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gan4rec.errors import DataError
from gan4rec.explain import UnsupportedError
from gan4rec.models.base import Recommender
from gan4rec.models.hybrid.common import HybridRecommender, weigh_rows

__all__ = ["METHOD_EXACT", "METHOD_OCCLUSION", "ContentExplanation", "content_method", "explain_cold"]

log = logging.getLogger(__name__)

METHOD_EXACT = "exact"
METHOD_OCCLUSION = "occlusion"
_LINEAR = ("content-knn", "ridge-map")
# Upper bound on the feature cells of one occlusion batch (rows x columns of the dense view some models take).
_OCCLUSION_CELLS = 1 << 24


@dataclass(frozen=True)
class ContentExplanation:
    """Attribution of a (cold) item's score to its content features.

    Attributes
    ----------
    item
        Index of the explained item, ``None`` for a new item given by its features.
    score
        The calibrated content score explained (``score_new_items`` of the item's content row).
    method
        ``"exact"`` or ``"occlusion"``.
    features, columns, values, contributions
        ``(m,)`` the top columns by absolute contribution: labels, column indices, the item's values, and
        contributions, largest ``|contribution|`` first (ties: lower column first).
    total
        Sum of the contributions of ALL nonzero columns.
    rest
        Exact: the part of the score that does not depend on the content (``score = total + rest``).
    baseline
        Occlusion: the score of an all-zero content row.
    n_nonzero
        Nonzero columns of the item's content (those that got a contribution).
    warnings
        E.g. that a warm item's real score comes from its interactions.
    """

    item: int | None
    score: float
    method: str
    features: list[str]
    columns: np.ndarray
    values: np.ndarray
    contributions: np.ndarray
    total: float
    rest: float | None
    baseline: float | None
    n_nonzero: int
    warnings: tuple[str, ...] = field(default=())

    def pairs(self) -> list[tuple[str, float]]:
        """``[(feature label, contribution), ...]``, largest ``|contribution|`` first."""
        return [(f, float(c)) for f, c in zip(self.features, self.contributions.tolist(), strict=True)]


def content_method(model: Recommender) -> str:
    """The method :func:`explain_cold` uses for ``model``; :class:`UnsupportedError` where it has none."""
    if not isinstance(model, HybridRecommender):
        raise UnsupportedError(f"model {model.name!r} does not score items from their content (it is not a "
                               "cold-start hybrid), so no content feature drives its scores")
    model._check_fitted()
    if model.n_features == 0:
        raise UnsupportedError(f"model {model.name!r} was fitted without item content (no item features), so "
                               "no content feature drives a cold item's score")
    return METHOD_EXACT if model.name in _LINEAR else METHOD_OCCLUSION


def _labels(model: Any) -> list[str]:
    names = getattr(model, "feature_names_", None)
    n = model.n_features
    if names is None or len(names) != n:
        return [f"feature={j}" for j in range(n)]
    return [str(v) for v in names]


def explain_cold(
    model: Recommender,
    user: int,
    *,
    item: int | None = None,
    features: Any = None,
    top: int = 10,
) -> ContentExplanation:
    """Explain a hybrid's score of a cold item (or a new item's features) for a user by its content features.

    Parameters
    ----------
    model
        A fitted cold-start hybrid with item content.
    user
        User index.
    item, features
        Exactly one: an item index of the model's map (its content row is ``features_[item]``), or the
        content row ``(n_features,)`` / ``(1, n_features)`` of a new item, in the columns of ``features_``.
    top
        Number of features returned.

    Returns
    -------
    ContentExplanation

    Raises
    ------
    UnsupportedError
        Not a hybrid, or a hybrid fitted without item content.
    DataError
        A bad user, item, feature row or ``top``.
    """
    method = content_method(model)
    m: Any = model
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise DataError(f"top must be a positive integer, got {top!r}")
    u = _index(user, model.n_users, "user")
    warnings: list[str] = []
    if (item is None) == (features is None):
        raise DataError("pass exactly one of item (an item index) or features (a new item's content row)")
    if item is not None:
        i: int | None = _index(item, model.n_items, "item")
        row = sp.csr_matrix(m.features_[i], dtype=np.float32)  # (1, n_features)
        if m.warm_[i]:
            real = float(model.score(np.array([u]))[0, i])
            warnings.append(f"item {i} is warm: its score {real:.6g} comes from its interactions; this explains "
                            "the score its content alone gives it, as a cold item")
    else:
        i = None
        row = sp.csr_matrix(features, dtype=np.float32).reshape(1, -1) if not sp.issparse(features) \
            else sp.csr_matrix(features, dtype=np.float32)
        if row.shape != (1, m.n_features):
            raise DataError(f"features have shape {row.shape}; expected one row of {m.n_features} columns "
                            "(the model's content columns)")
    row.eliminate_zeros()
    row.sort_indices()
    cols = np.asarray(row.indices, dtype=np.int64)  # (nnz,) the nonzero columns
    score = float(m.score_new_items(np.array([u]), row)[0, 0])
    rest: float | None = None
    baseline: float | None = None
    if method == METHOD_EXACT:
        contrib, rest = _exact(m, u, i, row)
        parts = float(contrib.sum()) + rest
        if not np.isclose(parts, score, rtol=1e-3, atol=1e-5):
            warnings.append(f"the exact contributions add up to {parts:.6g}, not the score {score:.6g} "
                            "(the item's neighbours tie)")
    else:
        contrib, baseline = _occlusion(m, u, row)
    if not len(cols):
        warnings.append("the item has no content (every feature is 0), so no feature drives its score")
    elif not np.any(contrib):
        warnings.append("every contribution is 0: for this user the score does not depend on this item's content"
                        + (" (none of its neighbours is in the user's history)" if m.name == "content-knn" else ""))
    order = np.lexsort((cols, -np.abs(contrib)))[: int(top)]
    labels = _labels(m)
    return ContentExplanation(
        item=i, score=score, method=method, features=[labels[c] for c in cols[order].tolist()],
        columns=cols[order].copy(), values=np.asarray(row.data, dtype=np.float64)[order],
        contributions=contrib[order].astype(np.float64), total=float(contrib.sum()), rest=rest,
        baseline=baseline, n_nonzero=len(cols), warnings=tuple(warnings),
    )


def _index(value: Any, n: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{what} must be an integer index, got {value!r}")
    if not 0 <= int(value) < n:
        raise DataError(f"{what} index {value} is out of range 0..{n - 1}")
    return int(value)


def _exact(model: Any, user: int, item: int | None, row: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """Contributions of ``row``'s nonzero columns (in its index order) and the content-free rest."""
    scale, offset = float(model.cold_scale), float(model.cold_offset)
    c = weigh_rows(row, model.idf_, model.weighting)  # (1, n_features), same sparsity as row
    cw = _on(c, row.indices)  # (nnz,) weighted values in row's column order
    if model.name == "ridge-map":
        u = np.asarray(model.user_factors_[user], dtype=np.float64)  # (f,)
        wu = np.asarray(model.map_, dtype=np.float64)[row.indices] @ u  # (nnz,) (W u)_j
        return scale * cw * wu, scale * float(u @ np.asarray(model.bias_, dtype=np.float64)) + offset
    # content-knn: the item's neighbours among the user's history, and their summed weighted content.
    hist = np.asarray(model.seen_.row(user), dtype=np.int64)
    # A warm item's content score (score_new_items) may count the item itself: take the new-item path.
    nbrs = _knn_neighbours(model, None if item is None or model.warm_[item] else item, c)
    used = np.intersect1d(hist, nbrs)
    docs = weigh_rows(model.features_[used], model.idf_, model.weighting)  # (n_used, n_features)
    summed = np.asarray(docs.sum(axis=0), dtype=np.float64).reshape(-1)  # (n_features,)
    return scale * cw * summed[row.indices], offset


def _on(m: sp.csr_matrix, cols: np.ndarray) -> np.ndarray:
    """Values of the one-row ``m`` at ``cols`` (zeros where it has none)."""
    dense = np.zeros(m.shape[1], dtype=np.float64)
    dense[m.indices] = m.data
    return dense[cols]


def _knn_neighbours(model: Any, item: int | None, c: sp.csr_matrix) -> np.ndarray:
    """The warm items content-knn scores ``item`` through: its column of ``weights_``, or for a new item its
    ``k`` most similar warm items by cosine of weighted content (as the model computes them)."""
    if item is not None:
        return np.sort(np.asarray(model.weights_[:, item].tocoo().row, dtype=np.int64))
    warm = np.flatnonzero(model.warm_)
    docs = weigh_rows(model.features_[warm], model.idf_, model.weighting)  # (n_warm, n_features)
    sim = np.asarray((c @ docs.T).toarray(), dtype=np.float64).reshape(-1)  # (n_warm,)
    k = min(int(model.k), len(warm))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-sim, k - 1)[:k] if k < len(sim) else np.arange(len(sim))
    return np.sort(warm[top[sim[top] > 0]])


def _occlusion(model: Any, user: int, row: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """Score minus the score with each nonzero column zeroed, and the all-zero row's score."""
    nnz, n_cols = len(row.indices), row.shape[1]
    users = np.array([user])
    full = float(model.score_new_items(users, row)[0, 0])
    baseline = float(model.score_new_items(users, sp.csr_matrix((1, n_cols), dtype=np.float32))[0, 0])
    out = np.empty(nnz, dtype=np.float64)
    step = max(1, _OCCLUSION_CELLS // max(n_cols, 1))
    for start in range(0, nnz, step):
        stop = min(start + step, nnz)
        b = stop - start
        # b copies of the row, copy r without the entry start + r.
        data = np.tile(row.data, b).reshape(b, nnz)
        data[np.arange(b), np.arange(start, stop)] = 0.0
        batch = sp.csr_matrix((data.reshape(-1), np.tile(row.indices, b), np.arange(b + 1) * nnz),
                              shape=(b, n_cols), dtype=np.float32)
        batch.eliminate_zeros()
        out[start:stop] = full - np.asarray(model.score_new_items(users, batch), dtype=np.float64)[0]
    return out, baseline
