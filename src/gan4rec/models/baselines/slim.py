"""SLIM: a sparse, non-negative item-to-item linear model learned by elastic-net regression."""

from __future__ import annotations

import logging
import time
import warnings
from typing import ClassVar

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.baselines.common import check_float, check_int, numpy_rng, triplets_to_csr
from gan4rec.models.baselines.knn import ItemSimilarityRecommender

__all__ = ["SLIM"]

log = logging.getLogger(__name__)


class SLIM(ItemSimilarityRecommender):
    """Sparse LInear Method with elastic-net regularisation (SLIM ElasticNet, Ning & Karypis 2011).

    Column ``j`` of the item-to-item matrix ``W`` solves, independently of the other columns,

    ``min_w 1/(2 n_users) ||x_j - X w||^2 + alpha l1_ratio ||w||_1 + alpha (1 - l1_ratio)/2 ||w||^2``

    subject to ``w >= 0`` and ``w_j = 0`` (item ``j`` may not explain itself), which is scikit-learn's
    :class:`~sklearn.linear_model.ElasticNet` objective. Each column keeps its ``topk`` largest weights
    (Ferrari Dacrema et al.'s implementation). Scores are ``X W``, so an unseen user's history folds in.

    Parameters
    ----------
    alpha
        Overall regularisation strength (> 0).
    l1_ratio
        Share of the L1 penalty in ``[0, 1]``; small values (1e-3 .. 1e-1) suit implicit feedback.
    topk
        Weights kept per item (column of ``W``).
    max_iter
        Coordinate-descent sweeps per column.
    tol
        Coordinate-descent tolerance (duality gap relative to ``||x_j||^2``).
    max_fit_seconds
        Refuse, with a :class:`~gan4rec.errors.DataError`, a fit projected to take longer than this
        (``None``: no limit). The fit first solves an evenly spaced sample of 32 columns and multiplies out
        their pace: past the sample it refuses a projection over the budget; from the 4th sampled column on
        it already refuses one over twice the budget, so a hopeless size stops after a few columns. The
        message names the projection. SLIM's cost grows like ``n_items x nnz``: seconds on MovieLens 100K,
        days on ML-20M-sized data on one core.
    random_state
        Seed of the random coordinate order; the same seed gives the same weights.

    Notes
    -----
    The defaults are the ``gan4rec tune`` result on the validation split of the CFGAN ML-100K data
    (``configs/slim-ml100k.toml``), rounded; they were not chosen on any test data.

    The solver runs on the sparse interaction matrix: scikit-learn's sparse coordinate descent costs
    ``O(nnz(X))`` per sweep and ignores ``precompute`` (a Gram-matrix solver needs a dense ``X``, and on
    MovieLens 100K it is twice as slow). Column ``j`` is excluded by zeroing its stored values in place for
    that one fit. Every column starts from zero: warm-starting from the previous item's weights was measured
    on MovieLens 100K to need as many sweeps (30.0K vs 29.4K in all), as consecutive items are unrelated
    targets.

    References
    ----------
    X. Ning, G. Karypis. SLIM: Sparse linear methods for top-N recommender systems. ICDM 2011.
    """

    name = "slim"
    search_space: ClassVar[SearchSpace] = {
        "alpha": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "l1_ratio": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
        "topk": {"type": "int", "low": 5, "high": 1000, "log": True},
    }

    probe_columns: ClassVar[int] = 32

    def __init__(self, *, alpha: float = 0.18, l1_ratio: float = 1e-5, topk: int = 250, max_iter: int = 100,
                 tol: float = 1e-4, max_fit_seconds: float | None = 4 * 3600.0,
                 random_state: int | None = None) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.topk = topk
        self.max_iter = max_iter
        self.tol = tol
        self.max_fit_seconds = max_fit_seconds
        self.random_state = random_state

    @staticmethod
    def _check_projection(elapsed: float, done: int, total: int, budget: float, *, final: bool) -> None:
        """Raise when ``total`` columns at the pace of the first ``done`` would exceed ``budget`` seconds.

        Before the sample is complete only a clear overrun (twice the budget) stops the fit, so a
        hopeless size is refused after a few columns rather than after the whole sample.
        """
        projected = elapsed * total / done
        if projected > (budget if final else 2 * budget):
            raise DataError(
                f"slim: projected fit time {projected:,.0f} s = {projected / 3600:.1f} h ({total:,} columns at {elapsed / done:.2f} s "
                f"each over a sample of {done}) exceeds max_fit_seconds={budget:g}; raise it (or pass None) "
                "to run anyway, or use EASE, RP3beta or ItemKNN at this size"
            )

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import ElasticNet

        alpha = check_float("alpha", self.alpha, low=0.0, low_open=True)
        l1_ratio = check_float("l1_ratio", self.l1_ratio, low=0.0, high=1.0)
        k = check_int("topk", self.topk, 1)
        max_iter = check_int("max_iter", self.max_iter, 1)
        tol = check_float("tol", self.tol, low=0.0)
        budget = None if self.max_fit_seconds is None else check_float(
            "max_fit_seconds", self.max_fit_seconds, low=0.0, low_open=True)
        rng = numpy_rng(self.random_state)

        n_users, n = train.shape
        # float64 CSC with int32 indices is what the sparse solver takes without a copy (check_input=False).
        x = train.csr().tocsc().astype(np.float64)  # (n_users, n_items)
        x.sort_indices()
        x.indices = x.indices.astype(np.int32)
        x.indptr = x.indptr.astype(np.int32)
        seeds = rng.integers(0, 2**31 - 1, size=n)  # one coordinate-order seed per column
        model = ElasticNet(
            alpha=alpha, l1_ratio=l1_ratio, positive=True, fit_intercept=False, copy_X=False,
            precompute=False, max_iter=max_iter, tol=tol, selection="random",
        )
        y = np.zeros(n_users, dtype=np.float64)
        parts = []
        unconverged = 0
        # Columns are independent (each has its own seed), so the order only matters for the projection:
        # an evenly spaced sample first, then the rest.
        cols = np.flatnonzero(np.diff(x.indptr))  # items nobody saw get an empty column
        probe = np.zeros(len(cols), dtype=bool)
        probe[:: max(1, len(cols) // self.probe_columns)] = True
        order = np.concatenate([cols[probe], cols[~probe]])
        n_probe = int(probe.sum()) if len(cols) > probe.sum() else 0  # nothing to project when all are probed
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for pos, j in enumerate(order):
                if budget is not None and 4 <= pos <= n_probe:
                    self._check_projection(time.perf_counter() - t0, pos, len(cols), budget, final=pos == n_probe)
                lo, hi = x.indptr[j], x.indptr[j + 1]
                rows, saved = x.indices[lo:hi], x.data[lo:hi].copy()
                y[rows] = saved
                x.data[lo:hi] = 0.0  # w_j = 0: the target's own column carries no signal
                model.set_params(random_state=int(seeds[j]))
                model.fit(x, y, check_input=False)
                x.data[lo:hi] = saved
                y[rows] = 0.0
                unconverged += model.n_iter_ >= max_iter
                coef = model.coef_  # (n_items,)
                nz = np.flatnonzero(coef > 0.0)
                if len(nz) > k:
                    nz = nz[np.argpartition(coef[nz], len(nz) - k)[len(nz) - k :]]
                parts.append((nz, np.full(len(nz), j), coef[nz]))
        self.weights_ = triplets_to_csr(parts, (n, n))
        log.debug("slim: %d weights kept, %.1fs", self.weights_.nnz, time.perf_counter() - t0)
        if unconverged:
            log.info("slim: %d of %d columns stopped at max_iter=%d before reaching tol=%g",
                     unconverged, n, max_iter, tol)
