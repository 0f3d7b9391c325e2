"""EASE with side information: interactions and weighted content stacked, solved in closed form."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.baselines.ease import spd_inverse_inplace
from gan4rec.models.hybrid.common import WEIGHTINGS, HybridRecommender, idf_weights, weigh_rows

__all__ = ["EASESide"]

log = logging.getLogger(__name__)

_BLOCK_BYTES = 256 * 2**20  # one dense float64 block of the Gram matrix


class EASESide(HybridRecommender):
    """EASE^R over interactions stacked with weighted content; cold items get weights through their content.

    The data is the users' interactions ``X`` ``(n_users, n_items)`` with the content rows appended as
    extra "users": ``Z = [X; beta F^T]``, ``F`` ``(n_items, n_features)`` TF-IDF weighted rows of unit
    length (the side-information EASE of Jeunen, Van Balen and Goethals, "Closed-form models for
    collaborative filtering with side-information", RecSys 2020 LBR). Item ``j`` is reconstructed from the
    WARM items (the only ones a user's history can hold):

        B = argmin ||Z - Z_W B||^2 + l2 ||B||^2,   B_jj = 0 for warm j,

    which in closed form is, with ``P = (Z_W^T Z_W + l2 I)^-1`` over warm items,

        B_WW = I - P diag(1 / diag P)            (EASE^R's solution, warm targets)
        B_WC = P Z_W^T Z_C = beta^2 P F_W F_C^T   (ridge regression, cold targets: X_C = 0)

    Scores are ``X_W B``. A new item's weights come from ``P = (I - B_WW) diag(diag P)``, so only ``B`` and
    ``diag P`` are kept. Without item features this is EASE^R on the warm items.

    Memory: float64 ``P`` over warm items, float64 ``B_WC`` and float32 ``B``: :meth:`memory_gb`; ``fit``
    refuses, before allocating, a catalog needing more than ``max_memory_gb``.

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    l2
        L2 penalty ``lambda`` (> 0).
    beta
        Weight of the content rows (>= 0; 0 gives EASE^R with cold items scored 0).
    weighting
        ``"tfidf"`` or ``"none"`` column weighting of the content.
    max_memory_gb
        Largest memory, in GiB, that ``fit`` may use.
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    random_state
        Accepted for a uniform interface; the model is deterministic.
    """

    name = "ease-side"
    #: The new-item diagonal is kept in float64, as computed (a float32 copy would change new items' scores).
    state_dtypes: ClassVar[dict[str, str]] = {**HybridRecommender.state_dtypes, "diag_p": "float64"}
    search_space: ClassVar[SearchSpace] = {
        "l2": {"type": "float", "low": 1.0, "high": 1e5, "log": True},
        "beta": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
        "weighting": {"type": "categorical", "choices": list(WEIGHTINGS)},
    }

    weights_: np.ndarray  # (n_warm, n_items) float32: B, rows = warm source items
    diag_p_: np.ndarray  # (n_warm,) float64 diag of P
    idf_: np.ndarray  # (n_features,)

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        l2: float = 500.0,
        beta: float = 10.0,
        weighting: str = "tfidf",
        max_memory_gb: float = 16.0,
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        random_state: int | None = None,
    ) -> None:
        self.item_features = item_features
        self.l2 = l2
        self.beta = beta
        self.weighting = weighting
        self.max_memory_gb = max_memory_gb
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.random_state = random_state

    @staticmethod
    def memory_gb(n_warm: int, n_items: int) -> float:
        """Estimated peak memory of ``fit`` in GiB: float64 ``P`` and ``B_WC``, float32 ``B``, one block."""
        n_w, n_c = int(n_warm), int(n_items) - int(n_warm)
        return (8.0 * n_w * n_w + 8.0 * n_w * n_c + 4.0 * n_w * int(n_items) + 2.0 * _BLOCK_BYTES) / 2**30

    def _check(self) -> tuple[float, float, float]:
        out = []
        for name, low_open in (("l2", True), ("beta", False), ("max_memory_gb", True)):
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
                and np.isfinite(v) and (v > 0 if low_open else v >= 0)
            if not ok:
                raise DataError(f"{name}={v!r}; expected a finite number {'> 0' if low_open else '>= 0'}")
            out.append(float(v))
        return out[0], out[1], out[2]

    def _stacked(self, train: Interactions) -> sp.csr_matrix:
        """``Z = [X; beta F^T]`` ``(n_users + n_features, n_items)`` float64 CSR."""
        x = sp.csr_matrix(train.csr(), dtype=np.float64)
        if self.n_features == 0 or self.beta == 0:
            return x
        content = weigh_rows(self.features_, self.idf_, self.weighting)  # (n_items, n_features)
        return sp.csr_matrix(sp.vstack([x, float(self.beta) * content.T.astype(np.float64)], format="csr"))

    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        l2, _, limit = self._check()
        self.idf_ = idf_weights(self.features_, self.weighting)
        warm, cold = np.flatnonzero(self.warm_), np.flatnonzero(~self.warm_)
        n_w, n_c = len(warm), len(cold)
        need = self.memory_gb(n_w, self.n_items)
        if need > limit:
            raise DataError(f"ease-side on {n_w} warm of {self.n_items} items needs about {need:.1f} GiB, more "
                            f"than max_memory_gb={limit:g}; raise max_memory_gb, or filter rare items")
        z = self._stacked(train)
        zw_t = sp.csr_matrix(z[:, warm].T)  # (n_w, n_rows)
        p = np.empty((n_w, n_w), dtype=np.float64)  # Gram over warm items, then its inverse P
        rhs = np.empty((n_w, n_c), dtype=np.float64, order="F")  # Z_W^T Z_C, then B_WC
        step = max(1, _BLOCK_BYTES // (8 * max(self.n_items, 1)))
        for start in range(0, n_w, step):
            block = (zw_t[start : start + step] @ z).toarray()  # (b, n_items)
            p[start : start + len(block)] = block[:, warm]
            rhs[start : start + len(block)] = block[:, cold]
        del z, zw_t
        p[np.diag_indices(n_w)] += l2
        spd_inverse_inplace(p, rhs)
        self.diag_p_ = np.diag(p).copy()
        p /= -self.diag_p_[None, :]  # B_ij = -P_ij / P_jj
        p[np.diag_indices(n_w)] = 0.0
        self.weights_ = np.empty((n_w, self.n_items), dtype=np.float32)
        self.weights_[:, warm] = p
        del p
        self.weights_[:, cold] = rhs

    def _history(self, users: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(self.seen_.csr()[users][:, np.flatnonzero(self.warm_)], dtype=np.float32)

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self._history(users) @ self.weights_, dtype=np.float32)  # (n, n_items)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        m = features.shape[0]
        if self.n_features == 0 or self.beta == 0:
            return np.zeros((len(users), m), dtype=np.float32)
        warm = np.flatnonzero(self.warm_)
        fw = weigh_rows(self.features_[warm], self.idf_, self.weighting)  # (n_w, n_features)
        fn = weigh_rows(features, self.idf_, self.weighting)  # (m, n_features)
        g = float(self.beta) ** 2 * (fw @ fn.T).toarray().astype(np.float64)  # (n_w, m): Z_W^T Z_new
        t = self.diag_p_[:, None] * g  # diag(P) G
        b_wn = t - self.weights_[:, warm].astype(np.float64) @ t  # P G = (I - B_WW) diag(P) G
        return np.asarray(self._history(users) @ b_wn, dtype=np.float32)

    def _hybrid_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "diag_p": self.diag_p_, "idf": self.idf_}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        n_w = int(self.warm_.sum())
        self.weights_ = np.ascontiguousarray(self._expect_shape(arrays, "weights", (n_w, self.n_items)),
                                             dtype=np.float32)
        self.diag_p_ = np.asarray(self._expect_shape(arrays, "diag_p", (n_w,)), dtype=np.float64)
        self.idf_ = np.asarray(self._expect_shape(arrays, "idf", (self.n_features,)), dtype=np.float32)
