"""EASE^R: an item-to-item linear autoencoder with a closed-form solution."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from gan4rec._progress import format_duration, step
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import Recommender, SearchSpace
from gan4rec.models.baselines.common import BLOCK_BYTES, check_float, check_history, product_blocks

__all__ = ["EASE", "ease_weights_from_gram_", "spd_inverse_inplace"]

log = logging.getLogger(__name__)

# Rows per step when mirroring a triangle in place: small enough that the transposed copy stays cheap.
_MIRROR_ROWS = 1024
# Rough single-thread speed of LAPACK's Cholesky factorisation plus inversion (potrf + potri: about
# n_items^3 flops together). Measured 20 to 28 GFLOP/s with OpenBLAS on the 2-core development VM at 1,500
# and 3,000 items; set lower so the estimate errs long.
_FACTOR_FLOPS_PER_S = 1.5e10
# Fits whose factorisation is estimated to take at least this long get a cost warning before they start.
_WARN_SECONDS = 30.0


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (EASE^R, Steck 2019).

    Learns a dense item-to-item matrix ``B`` with a zero diagonal minimising
    ``||X - X B||_F^2 + l2 ||B||_F^2``; its closed form is ``B = I - P diag(1 / diag(P))`` with
    ``P = (X^T X + l2 I)^-1``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal. Scores are ``X B``, so an
    unseen user's history folds in (:meth:`score_history`).

    The Gram matrix is built in float64 from sparse row blocks and inverted in place through its Cholesky
    factor (LAPACK ``potrf``/``potri``). Fitting needs about ``12 n_items^2`` bytes (float64 ``P`` plus the
    float32 ``B``); :meth:`memory_gb` estimates it and ``fit`` refuses, before allocating anything, a
    catalog that would need more than ``max_memory_gb``.

    Parameters
    ----------
    l2
        L2 regularisation ``lambda`` (> 0). Steck reports a few hundred for MovieLens-sized data.
    max_memory_gb
        Largest memory, in GiB, that ``fit`` may use.
    random_state
        Accepted for a uniform interface; EASE is deterministic.

    References
    ----------
    H. Steck. Embarrassingly shallow autoencoders for sparse data. WWW 2019.
    """

    name = "ease"
    search_space: ClassVar[SearchSpace] = {
        "l2": {"type": "float", "low": 1.0, "high": 1e5, "log": True},
    }

    weights_: np.ndarray  # (n_items, n_items) float32, zero diagonal

    def __init__(
        self, *, l2: float = 500.0, max_memory_gb: float = 16.0, random_state: int | None = None
    ) -> None:
        self.l2 = l2
        self.max_memory_gb = max_memory_gb
        self.random_state = random_state

    @staticmethod
    def memory_gb(n_items: int) -> float:
        """Estimated peak memory of :meth:`fit` in GiB for a catalog of ``n_items`` items.

        float64 ``P`` (8 bytes per entry), the float32 ``B`` made from it (4) and one Gram block.
        """
        n = int(n_items)
        return (12.0 * n * n + 2.0 * BLOCK_BYTES) / 2**30

    @staticmethod
    def factorisation_seconds(n_items: int) -> float:
        """Rough single-threaded time of the Cholesky factorisation and inversion, from ``n_items^3``.

        The Gram matrix adds to this (it grows with the interactions rather than the catalog); so does a
        machine busy with other work.
        """
        return float(n_items) ** 3 / _FACTOR_FLOPS_PER_S

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        l2 = check_float("l2", self.l2, low=0.0, low_open=True)
        limit = check_float("max_memory_gb", self.max_memory_gb, low=0.0, low_open=True)
        n = train.n_items
        need = self.memory_gb(n)
        if need > limit:
            raise DataError(
                f"EASE on {n} items needs about {need:.1f} GiB, more than max_memory_gb={limit:g}; "
                "raise max_memory_gb, or filter rare items to shrink the catalog"
            )
        seconds = self.factorisation_seconds(n)
        if seconds >= _WARN_SECONDS:
            log.warning(
                "EASE on %d items needs about %.1f GiB and about %s for the single-threaded factorisation "
                "(from n_items^3); the Gram matrix adds to that",
                n, need, format_duration(seconds),
            )
        x = train.csr()
        with step(f"EASE Gram ({n} items)", log):
            p = np.empty((n, n), dtype=np.float64)  # (n_items, n_items): Gram, then its inverse
            for start, block in product_blocks(x.T.tocsr(), x):
                p[start : start + block.shape[0]] = block
        self.weights_ = ease_weights_from_gram_(p, l2)

    def score_history(self, history: Any) -> np.ndarray:
        """Scores of every item for users given by their histories, seen in training or not.

        Parameters
        ----------
        history
            ``(n, n_items)`` scipy sparse matrix (or dense array) of interactions, 1 for an interaction.

        Returns
        -------
        np.ndarray
            ``(n, n_items)`` float32 scores ``history @ B``; history items are not masked.
        """
        self._check_fitted()
        h = check_history(history, self.n_items)  # (n, n_items)
        return np.asarray(h @ self.weights_, dtype=np.float32)  # (n, n_items)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_history(self.seen_.csr()[users])

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        w = self._expect_shape(arrays, "weights", (self.n_items, self.n_items))
        self.weights_ = np.ascontiguousarray(w, dtype=np.float32)


def ease_weights_from_gram_(p: np.ndarray, l2: float) -> np.ndarray:
    """EASE^R's float32 weights from a float64 C-ordered Gram matrix ``p`` (overwritten: ``p`` ends as B).

    ``B = I - P diag(1 / diag(P))`` with ``P = (G + l2 I)^-1``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal
    and 0 on it.
    """
    n = len(p)
    p[np.diag_indices(n)] += l2
    with step(f"EASE inverse ({n} items)", log):
        spd_inverse_inplace(p)
    # B_ij = -P_ij / P_jj: scale every column by -1 / P_jj, then zero the diagonal.
    p /= -np.diag(p)[None, :]
    p[np.diag_indices(n)] = 0.0
    return p.astype(np.float32)


def spd_inverse_inplace(a: np.ndarray, rhs: np.ndarray | None = None) -> None:
    """Replace the symmetric positive-definite C-ordered ``a`` by its inverse, without a second n x n copy.

    ``a.T`` is the same matrix in Fortran order, so LAPACK works on ``a``'s memory directly; it fills one
    triangle, which is then mirrored block by block. With ``rhs`` (``(n, m)`` float64, Fortran-ordered or
    with ``m = 0``), the same Cholesky factor also overwrites ``rhs`` by ``a^-1 rhs`` (side-info EASE's cold
    items), before the inverse.
    """
    n = a.shape[0]
    f = a.T  # F-contiguous view of the same (symmetric) memory
    # One BLAS thread: OpenBLAS 0.3.30's threaded dpotrf segfaults on the 26,744-item (ML-20M-size) Gram
    # matrix with 2 threads (reproduced alone, not a memory limit); single-threaded it completes, and at
    # ML-100K size the result is bit-identical either way.
    with threadpool_limits(limits=1, user_api="blas"):
        c, info = lapack.dpotrf(f, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            raise DataError(f"the regularised Gram matrix is not positive definite (LAPACK potrf info={info}); "
                            "increase l2")
        if rhs is not None and rhs.shape[1]:
            x, info = lapack.dpotrs(c, rhs, lower=0, overwrite_b=1)
            if info != 0:
                raise DataError(f"solving for the cold items failed (LAPACK potrs info={info}); increase l2")
            if not np.shares_memory(x, rhs):
                rhs[...] = x
        inv, info = lapack.dpotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise DataError(
            f"inverting the regularised Gram matrix failed (LAPACK potri info={info}); increase l2"
        )
    if not np.shares_memory(inv, a):
        # LAPACK had to copy (non-contiguous input); bring the result back.
        a[...] = inv.T
    # The Fortran upper triangle is a's lower triangle (C order): mirror it onto the upper one.
    for start in range(0, n, _MIRROR_ROWS):
        stop = min(start + _MIRROR_ROWS, n)
        diag = a[start:stop, start:stop]
        diag[...] = np.tril(diag) + np.tril(diag, -1).T
        a[start:stop, stop:] = a[stop:, start:stop].T
