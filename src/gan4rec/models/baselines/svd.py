"""PureSVD: truncated SVD of the user-item matrix, used as an item-to-item projection."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import Recommender, SearchSpace
from gan4rec.models.baselines.common import check_history, check_int, numpy_rng

__all__ = ["PureSVD"]

log = logging.getLogger(__name__)


class PureSVD(Recommender):
    """Top-``n_factors`` truncated SVD of the 0/1 user-item matrix (PureSVD, Cremonesi et al. 2010).

    With ``X ~ U S V^T``, a user with history ``x`` scores ``x V V^T``: the history projected on the
    ``n_factors`` leading right singular vectors. On training rows this equals ``U S V^T`` (because
    ``X V = U S``), and an unseen user's history folds in (:meth:`score_history`).

    The factorisation is ARPACK's (:func:`scipy.sparse.linalg.svds`) at machine precision, started from
    a vector drawn from ``random_state``, so the same seed gives bit-identical factors. ``n_factors`` is
    capped at ``min(n_users, n_items) - 1``, the most ARPACK can compute.

    Parameters
    ----------
    n_factors
        Number of singular vectors kept.
    random_state
        Seed of ARPACK's starting vector.

    References
    ----------
    P. Cremonesi, Y. Koren, R. Turrin. Performance of recommender algorithms on top-N recommendation
    tasks. RecSys 2010.
    """

    name = "puresvd"
    search_space: ClassVar[SearchSpace] = {
        "n_factors": {"type": "int", "low": 1, "high": 350, "log": True},
    }

    item_factors_: np.ndarray  # (n_items, n_factors) float32: V, orthonormal columns

    def __init__(self, *, n_factors: int = 50, random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.random_state = random_state

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        requested = check_int("n_factors", self.n_factors, 1)
        rng = numpy_rng(self.random_state)
        x = sp.csr_matrix(train.csr(), dtype=np.float64)  # (n_users, n_items)
        k = min(requested, min(x.shape) - 1)
        if k < 1:
            raise DataError(f"PureSVD needs at least 2 users and 2 items, got {x.shape[0]} x {x.shape[1]}")
        if k < requested:
            log.warning("puresvd: n_factors=%d capped at %d for a %d x %d matrix", requested, k, *x.shape)
        v0 = rng.uniform(-1.0, 1.0, size=min(x.shape))
        _, s, vt = svds(x, k=k, v0=v0, solver="arpack")  # v0 alone seeds ARPACK (scipy >= 1.11)
        order = np.argsort(-s, kind="stable")  # svds returns ascending singular values
        self.item_factors_ = np.ascontiguousarray(vt[order].T, dtype=np.float32)  # (n_items, k)
        self.singular_values_ = s[order].astype(np.float32)  # (k,)

    def score_history(self, history: Any) -> np.ndarray:
        """Scores of every item for users given by their histories, seen in training or not.

        Parameters
        ----------
        history
            ``(n, n_items)`` scipy sparse matrix (or dense array) of interactions, 1 for an interaction.

        Returns
        -------
        np.ndarray
            ``(n, n_items)`` float32 scores ``history @ V @ V^T``; history items are not masked.
        """
        self._check_fitted()
        h = check_history(history, self.n_items)  # (n, n_items)
        z = np.asarray(h @ self.item_factors_)  # (n, k)
        return np.asarray(z @ self.item_factors_.T, dtype=np.float32)  # (n, n_items)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_history(self.seen_.csr()[users])

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "singular_values": self.singular_values_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        k = min(int(self.n_factors), min(self.n_users, self.n_items) - 1)
        self.item_factors_ = np.ascontiguousarray(
            self._expect_shape(arrays, "item_factors", (self.n_items, k)), dtype=np.float32
        )
        self.singular_values_ = self._expect_shape(arrays, "singular_values", (k,)).astype(np.float32)
