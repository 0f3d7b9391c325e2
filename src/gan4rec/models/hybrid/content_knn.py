"""Content-based item KNN: a cold item is recommended to the users of the warm items whose content it shares."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.hybrid.common import (
    WEIGHTINGS,
    HybridRecommender,
    csr_from_state,
    csr_state,
    idf_weights,
    weigh_rows,
)

__all__ = ["ContentKNN"]

log = logging.getLogger(__name__)

_BLOCK_FLOATS = 1 << 24  # dense similarity entries per block (64 MB of float32)


class ContentKNN(HybridRecommender):
    """Item KNN on content: ``score(u, i) = sum over u's items j of cos(f_i, f_j)``, top ``k`` neighbours of ``i``.

    Every item ``i`` (warm or cold) keeps its ``k`` most similar WARM items ``j != i`` by the cosine of their
    content rows ``f``, after TF-IDF weighting of the feature columns (items are the documents, feature
    columns the terms: ``sqrt(tf) * log(n_items / df)``, as :class:`~gan4rec.models.baselines.knn.ItemKNN`
    weighs users). A user's score for ``i`` is the sum of the similarities of ``i``'s neighbours that the
    user interacted with. This is the classic content-based recommender and the first thing a cold-start
    model has to beat.

    Without item features (``features_`` has zero columns) the content is each item's column of the
    training interactions, i.e. plain cosine ItemKNN; cold items then have no neighbours and score 0.

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    k
        Neighbours kept per item.
    weighting
        ``"tfidf"`` or ``"none"`` (features used as they are, e.g. already TF-IDF).
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    random_state
        Accepted for a uniform interface; the model is deterministic.
    """

    name = "content-knn"
    search_space: ClassVar[SearchSpace] = {
        "k": {"type": "int", "low": 10, "high": 1000, "log": True},
        "weighting": {"type": "categorical", "choices": list(WEIGHTINGS)},
    }

    weights_: sp.csr_matrix  # (n_items, n_items): weights_[j, i] = cos(f_i, f_j) for j among i's neighbours
    idf_: np.ndarray  # (n_features,) column weights (ones for weighting="none")

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        k: int = 100,
        weighting: str = "tfidf",
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        random_state: int | None = None,
    ) -> None:
        self.item_features = item_features
        self.k = k
        self.weighting = weighting
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.random_state = random_state

    def _docs(self, train: Interactions | None) -> sp.csr_matrix:
        """The content rows that similarities are computed on: features, or interaction columns without."""
        if self.n_features == 0:
            assert train is not None
            return sp.csr_matrix(train.csr().T, dtype=np.float32)  # (n_items, n_users)
        return self.features_

    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise DataError(f"k={self.k!r}; expected an int >= 1")
        docs = self._docs(train)
        self.idf_ = idf_weights(docs, self.weighting)
        normed = self._normalise(docs)  # (n_items, n_cols)
        self.weights_ = self._neighbours(normed, exclude_self=True).T.tocsr()  # (sources j, targets i)

    def _normalise(self, docs: sp.csr_matrix) -> sp.csr_matrix:
        return weigh_rows(docs, self.idf_, self.weighting)

    def _neighbours(self, targets: sp.csr_matrix, *, exclude_self: bool) -> sp.csr_matrix:
        """``(n_targets, n_items)`` CSR: row ``t`` holds the cosines of ``t``'s top ``k`` warm neighbours.

        ``targets`` are normalised content rows; with ``exclude_self`` they are the model's own items and
        row ``t`` never holds item ``t``.
        """
        warm = np.flatnonzero(self.warm_)
        sources = self._warm_docs()  # (n_warm, n_cols)
        k = min(int(self.k), len(warm))
        n_t = targets.shape[0]
        rows, cols, vals = [], [], []
        block = max(1, _BLOCK_FLOATS // max(len(warm), 1))
        src_t = sources.T.tocsr()
        for start in range(0, n_t, block):
            stop = min(start + block, n_t)
            sim = (targets[start:stop] @ src_t).toarray()  # (b, n_warm)
            if exclude_self:
                pos = np.searchsorted(warm, np.arange(start, stop))
                hit = (pos < len(warm)) & (warm[np.minimum(pos, len(warm) - 1)] == np.arange(start, stop))
                sim[np.flatnonzero(hit), pos[hit]] = 0.0
            if k == 0:
                continue
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else \
                np.broadcast_to(np.arange(sim.shape[1]), sim.shape)  # (b, k)
            v = np.take_along_axis(sim, top, axis=1)
            keep = v > 0
            r = np.broadcast_to(np.arange(start, stop)[:, None], top.shape)
            rows.append(r[keep])
            cols.append(warm[top[keep]])
            vals.append(v[keep].astype(np.float32))
        if not rows:
            return sp.csr_matrix((n_t, self.n_items), dtype=np.float32)
        out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(n_t, self.n_items), dtype=np.float32)
        out.sort_indices()
        return out

    def _warm_docs(self) -> sp.csr_matrix:
        if self.n_features == 0:
            docs = sp.csr_matrix(self.seen_.csr().T, dtype=np.float32)
        else:
            docs = self.features_
        return self._normalise(docs[np.flatnonzero(self.warm_)])

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        h = self.seen_.csr()[users]  # (n, n_items)
        return np.asarray((h @ self.weights_).toarray(), dtype=np.float32)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        if self.n_features == 0:
            return np.zeros((len(users), features.shape[0]), dtype=np.float32)
        w = self._neighbours(self._normalise(features), exclude_self=False)  # (m, n_items)
        h = self.seen_.csr()[users]  # (n, n_items)
        return np.asarray((h @ w.T).toarray(), dtype=np.float32)

    def _hybrid_state(self) -> dict[str, Any]:
        return {**csr_state("weights", self.weights_), "idf": self.idf_}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights_ = csr_from_state(arrays, "weights", self.n_items)
        n_cols = self.n_features if self.n_features else self.n_users
        self.idf_ = np.asarray(self._expect_shape(arrays, "idf", (n_cols,)), dtype=np.float32)
