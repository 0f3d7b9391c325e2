"""Paired significance tests across users, Holm's correction, and confidence intervals of a mean.

Two models evaluated on the same test users give one metric value per user each: the pairs ``(a[u], b[u])``
are the unit of the tests, never the runs (a handful of seeds is far too few samples, and runs share users).

* :func:`paired_wilcoxon`: Wilcoxon signed-rank test of the differences ``a - b`` (no normality assumption;
  the main test, since per-user ranking metrics are bounded, skewed and full of ties at zero).
* :func:`paired_ttest`: paired t-test of the same differences (reported alongside, as is customary).
* :func:`holm`: Holm-Bonferroni step-down adjustment of a family of p-values (e.g. the best model against
  each of the others), controlling the family-wise error rate without assuming independence.
* :func:`mean_ci`: mean and Student-t confidence interval of one sample.

Degenerate inputs do not crash and do not produce NaN p-values: identical samples (every difference zero)
give ``p = 1``; fewer than two pairs give ``p = 1`` for the t-test (no evidence either way); a constant
non-zero difference gives ``p = 0`` for the t-test (zero variance, infinite statistic).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan4rec.errors import DataError

__all__ = ["PairedTest", "holm", "mean_ci", "paired_ttest", "paired_wilcoxon"]

_ZERO_METHODS = ("wilcox", "pratt", "zsplit")


@dataclass(frozen=True)
class PairedTest:
    """The outcome of a paired test.

    Attributes
    ----------
    statistic
        The test statistic (Wilcoxon: the smaller signed-rank sum for two-sided tests, as in scipy; t-test:
        ``t``). ``nan`` when undefined (fewer than two pairs), ``+-inf`` for a constant non-zero difference.
    p_value
        Two-sided p-value in ``[0, 1]``; never NaN.
    n
        Pairs that entered the test (Wilcoxon with ``zero_method="wilcox"``: the non-zero differences).
    method
        How the p-value was computed, e.g. ``"wilcoxon signed-rank (wilcox zeros, auto)"``.
    """

    statistic: float
    p_value: float
    n: int
    method: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; a non-finite statistic becomes ``None``."""
        stat = float(self.statistic)
        return {
            "statistic": stat if math.isfinite(stat) else None,
            "p": float(self.p_value),
            "n": int(self.n),
            "method": self.method,
        }


def _pairs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise DataError(f"paired samples must be 1-D arrays, got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise DataError(f"paired samples must have the same length, got {len(x)} and {len(y)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("paired samples contain NaN or infinite values; expected finite metric values")
    return x, y


def paired_wilcoxon(a: Any, b: Any, *, zero_method: str = "wilcox") -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` (``a[i]`` and ``b[i]`` belong to the same user).

    Parameters
    ----------
    a, b
        ``(n,)`` finite values, paired by position.
    zero_method
        Treatment of zero differences, as in :func:`scipy.stats.wilcoxon`: ``"wilcox"`` (default) drops
        them, ``"pratt"`` ranks them and drops their ranks, ``"zsplit"`` splits their ranks.

    Returns
    -------
    PairedTest
        ``p_value = 1`` when every difference is zero (scipy would warn and divide by zero there).

    Notes
    -----
    scipy's ``method="auto"`` is used: the exact null distribution for up to 50 differences without ties
    or zeros, a permutation distribution for up to 13 with ties, else the normal approximation with tie
    correction. All three are deterministic.
    """
    if zero_method not in _ZERO_METHODS:
        raise DataError(f"zero_method={zero_method!r}; expected one of {', '.join(_ZERO_METHODS)}")
    x, y = _pairs(a, b)
    d = x - y  # (n,)
    nonzero = int(np.count_nonzero(d))
    method = f"wilcoxon signed-rank ({zero_method} zeros, auto)"
    n_used = nonzero if zero_method == "wilcox" else len(d)
    if nonzero == 0:
        return PairedTest(statistic=0.0, p_value=1.0, n=n_used, method=method)
    from scipy import stats

    with warnings.catch_warnings():
        # Small or tied samples make scipy warn about its approximation; the method string records it.
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        res = stats.wilcoxon(d, zero_method=zero_method, alternative="two-sided", method="auto")
    p = float(res.pvalue)
    return PairedTest(statistic=float(res.statistic), p_value=min(max(p, 0.0), 1.0) if math.isfinite(p) else 1.0,
                      n=n_used, method=method)


def paired_ttest(a: Any, b: Any) -> PairedTest:
    """Two-sided paired t-test of ``a - b`` with ``n - 1`` degrees of freedom.

    Returns
    -------
    PairedTest
        ``p = 1`` (statistic ``nan``) for fewer than two pairs or all-zero differences; ``p = 0`` (statistic
        ``+-inf``) for a constant non-zero difference.
    """
    x, y = _pairs(a, b)
    d = x - y  # (n,)
    n = len(d)
    method = "paired t-test"
    if n < 2:
        return PairedTest(statistic=math.nan, p_value=1.0, n=n, method=method)
    mean = float(d.mean())
    if float(np.ptp(d)) == 0.0:
        if mean == 0.0:
            return PairedTest(statistic=0.0, p_value=1.0, n=n, method=method)
        return PairedTest(statistic=math.copysign(math.inf, mean), p_value=0.0, n=n, method=method)
    from scipy import stats

    res = stats.ttest_rel(x, y)
    p = float(res.pvalue)
    return PairedTest(statistic=float(res.statistic), p_value=min(max(p, 0.0), 1.0) if math.isfinite(p) else 1.0,
                      n=n, method=method)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    With the ``m`` p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of ``p_(i)`` is
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. Rejecting where the adjusted value is ``<= alpha`` controls
    the family-wise error rate at ``alpha``.

    Parameters
    ----------
    p_values
        ``(m,)`` p-values in ``[0, 1]`` (an empty input gives an empty output).

    Returns
    -------
    numpy.ndarray
        ``(m,)`` float64 adjusted p-values.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(f"p_values must be a 1-D sequence, got shape {p.shape}")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        bad = p[~(np.isfinite(p) & (p >= 0) & (p <= 1))][0]
        raise DataError(f"p_values contains {bad!r}; expected probabilities in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")  # (m,)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])  # (m,) (m - j + 1) * p_(j), j from 1
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)  # step-down: never below an earlier adjusted value
    return adjusted


def mean_ci(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its two-sided Student-t confidence interval.

    Returns
    -------
    mean, low, high
        ``low = high = mean`` for a sample of one or with zero variance.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise DataError(f"values must be a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("values contain NaN or infinite entries; expected finite numbers")
    if not 0 < level < 1:
        raise DataError(f"level={level!r}; expected a confidence level in (0, 1)")
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half
