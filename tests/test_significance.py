"""Paired tests and Holm's correction: hand-computed values, scipy agreement, degenerate inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from gan4rec.errors import DataError
from gan4rec.evaluation.significance import PairedTest, holm, mean_ci, paired_ttest, paired_wilcoxon


def test_holm_textbook_example() -> None:
    # Sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, 1*0.04=0.04 -> cummax 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)


def test_holm_step_down_keeps_order_and_caps_at_one() -> None:
    # Sorted: 0.001*3=0.003, 0.02*2=0.04, 0.03*1=0.03 -> the last is raised to 0.04 (monotone).
    assert holm([0.02, 0.03, 0.001]) == pytest.approx([0.04, 0.04, 0.003], abs=1e-15)
    assert holm([0.6, 0.5]).tolist() == [1.0, 1.0]
    assert holm([0.2]).tolist() == [0.2]
    assert holm([]).shape == (0,)
    p = np.random.default_rng(0).uniform(size=20)
    adj = holm(p)
    assert (adj >= p).all() and (adj <= 1).all()
    assert (np.diff(adj[np.argsort(p)]) >= 0).all()


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [1.2], [-0.1], [[0.1, 0.2]]])
def test_holm_rejects_non_probabilities(bad: list) -> None:
    with pytest.raises(DataError, match="p_values"):
        holm(bad)


def test_wilcoxon_hand_computed_exact() -> None:
    # d = [1, -2, 3, 4, 5]: ranks 1..5, W- = 2 -> statistic 2; exact two-sided p = 2 * #{subsets of 1..5 with
    # rank sum <= 2} / 2^5 = 2 * 3 / 32.
    a = np.array([2.0, 0.0, 3.0, 4.0, 5.0])
    b = np.array([1.0, 2.0, 0.0, 0.0, 0.0])
    res = paired_wilcoxon(a, b)
    assert res.statistic == 2.0
    assert res.p_value == pytest.approx(6 / 32, abs=1e-12)
    assert res.n == 5


def test_wilcoxon_matches_scipy_with_ties_and_zeros() -> None:
    rng = np.random.default_rng(3)
    a = np.round(rng.uniform(size=40), 1)
    b = np.round(rng.uniform(size=40), 1)
    b[:5] = a[:5]  # zero differences are dropped (zero_method="wilcox")
    ref = stats.wilcoxon(a, b, zero_method="wilcox", method="auto")
    res = paired_wilcoxon(a, b)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.n == np.count_nonzero(a - b) <= 35
    ref_pratt = stats.wilcoxon(a, b, zero_method="pratt")
    assert paired_wilcoxon(a, b, zero_method="pratt").p_value == pytest.approx(ref_pratt.pvalue, rel=1e-12)


def test_ttest_hand_computed_and_scipy() -> None:
    # d = [1, 2, 3]: mean 2, sd 1, t = 2 * sqrt(3); with 2 degrees of freedom p = 1 - t / sqrt(2 + t^2).
    res = paired_ttest([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    t = 2 * math.sqrt(3)
    assert res.statistic == pytest.approx(t)
    assert res.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-10)
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=30), rng.normal(size=30)
    ref = stats.ttest_rel(a, b)
    got = paired_ttest(a, b)
    assert got.statistic == pytest.approx(ref.statistic) and got.p_value == pytest.approx(ref.pvalue)


def test_identical_inputs_give_p_one_without_warnings() -> None:
    a = np.array([0.0, 0.5, 0.25, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = paired_wilcoxon(a, a.copy())
        t = paired_ttest(a, a.copy())
    assert (w.p_value, w.statistic, w.n) == (1.0, 0.0, 0)
    assert (t.p_value, t.statistic) == (1.0, 0.0)


def test_degenerate_t_tests() -> None:
    const = paired_ttest([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert const.p_value == 0.0 and const.statistic == math.inf
    assert const.to_json()["statistic"] is None  # JSON has no infinity
    one = paired_ttest([1.0], [0.0])
    assert one.p_value == 1.0 and math.isnan(one.statistic)
    assert paired_wilcoxon([1.0], [0.0]).p_value == pytest.approx(1.0)


def test_bad_pairs_raise_data_error() -> None:
    with pytest.raises(DataError, match="same length, got 3 and 2"):
        paired_wilcoxon([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match="NaN"):
        paired_ttest([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(DataError, match="zero_method"):
        paired_wilcoxon([1.0], [2.0], zero_method="bogus")


def test_mean_ci_textbook() -> None:
    # [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), t(0.975, 3) = 3.182446305284263.
    mean, low, high = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert mean == 2.5 and low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    assert mean_ci([0.3]) == (0.3, 0.3, 0.3)
    with pytest.raises(DataError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)


def test_paired_test_json() -> None:
    res = PairedTest(statistic=1.5, p_value=0.25, n=4, method="m")
    assert res.to_json() == {"statistic": 1.5, "p": 0.25, "n": 4, "method": "m"}
