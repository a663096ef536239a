"""The report's statistics (``emotic_mm.report.stats``) against hand values, scipy and statsmodels, and the
verdict rule on synthetic paired tables with a known difference and with none."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from emotic_mm.report import stats

Z = 1.959963984540054


# --------------------------------------------------------------------------- one proportion
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (1, 200), (57, 600), (599, 600)])
def test_wilson_matches_scipy_and_the_formula(k, n):
    low, high = stats.wilson(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)
    p = k / n  # the score interval written out
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    assert (low, high) == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)), abs=1e-9)


def test_wilson_hand_values_and_no_n():
    assert stats.wilson(0, 10) == pytest.approx((0.0, Z**2 / (10 + Z**2)))  # 0 of 10: upper 27.8 %, not 0
    assert stats.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))
    assert all(math.isnan(v) for v in stats.wilson(3, float("nan")))


def test_median_pixels_needed_counts_the_unfooled_as_more():
    nan = float("nan")
    assert stats.median_needed([1, 3, 3, nan, nan]) == 3.0
    assert stats.median_needed([1, nan, nan]) == float("inf")  # the median person was never fooled
    assert stats.median_needed([1, 30, 30], censor=10) == float("inf")  # fooled only beyond the common k
    assert math.isnan(stats.median_needed([]))


# --------------------------------------------------------------------------- McNemar
def _paired(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.r_[np.ones(both + only_a), np.zeros(only_b + neither)].astype(bool)
    b = np.r_[np.ones(both), np.zeros(only_a), np.ones(only_b), np.zeros(neither)].astype(bool)
    return a, b


def test_mcnemar_exact_on_a_hand_table():
    # 7 pairs only A fooled, 1 only B: under the null each is a fair coin → p = 2·P(X ≤ 1 | 8, ½) = 18/256
    result = stats.mcnemar_test(*_paired(both=12, only_a=7, only_b=1, neither=30))
    assert (result.only_a, result.only_b) == (7, 1)
    assert result.pvalue == pytest.approx(18 / 256)


def test_mcnemar_stays_exact_with_many_discordant_pairs():
    result = stats.mcnemar_test(*_paired(both=5, only_a=30, only_b=10, neither=55))
    assert result.pvalue == pytest.approx(2 * binom.cdf(10, 40, 0.5))  # two-sided exact binomial on 40 pairs


def test_mcnemar_without_discordant_pairs_is_p_one():
    result = stats.mcnemar_test(*_paired(both=4, only_a=0, only_b=0, neither=6))
    assert result.pvalue == 1.0 and (result.only_a, result.only_b) == (0, 0)


# --------------------------------------------------------------------------- paired bootstrap
def _naive_bootstrap(a, b, clusters, resamples, seed):
    """The textbook version: draw person indices with replacement within each cluster."""
    rng = np.random.default_rng(seed)
    diff = np.asarray(a, float) - np.asarray(b, float)
    total = np.zeros(resamples)
    for c in np.unique(clusters):
        d = diff[clusters == c]
        total += d[rng.integers(0, len(d), size=(resamples, len(d)))].sum(1)
    return total / len(diff)


def test_paired_bootstrap_matches_resampling_persons():
    rng = np.random.default_rng(7)
    clusters = np.repeat([0, 1, 2], 150)
    a = rng.random(450) < np.repeat([0.5, 0.4, 0.6], 150)
    b = rng.random(450) < 0.35
    got = stats.paired_bootstrap(a, b, clusters, resamples=20_000)
    naive = np.quantile(_naive_bootstrap(a, b, clusters, 20_000, 1), [0.025, 0.975])
    assert got.diff == pytest.approx(a.mean() - b.mean())
    assert (got.low, got.high) == pytest.approx(tuple(naive), abs=0.006)  # Monte-Carlo error of 20k resamples


def test_paired_bootstrap_width_is_the_paired_standard_error():
    rng = np.random.default_rng(3)
    a = rng.random(2000) < 0.5
    b = a & (rng.random(2000) < 0.6)  # B is fooled on a subset of A's persons: diff ≈ 0.2
    diff = a.astype(float) - b
    se = diff.std(ddof=0) / math.sqrt(len(diff))
    got = stats.paired_bootstrap(a, b)
    assert got.low == pytest.approx(diff.mean() - Z * se, abs=0.004)
    assert got.high == pytest.approx(diff.mean() + Z * se, abs=0.004)


def test_paired_bootstrap_resamples_within_each_seed():
    # seed 0: A fooled on every person and B on none; seed 1: neither. Resampling within each seed keeps
    # each seed's half of the pairs, so the pooled difference is exactly 0.5 every time.
    a = np.r_[np.ones(50), np.zeros(50)]
    b = np.zeros(100)
    clustered = stats.paired_bootstrap(a, b, clusters=np.repeat([0, 1], 50))
    assert (clustered.diff, clustered.low, clustered.high) == (0.5, 0.5, 0.5)
    pooled = stats.paired_bootstrap(a, b)
    assert pooled.low < 0.45 and pooled.high > 0.55


def test_paired_bootstrap_is_reproducible_and_checks_its_input():
    rng = np.random.default_rng(0)
    a, b = rng.random(100) < 0.3, rng.random(100) < 0.3
    assert stats.paired_bootstrap(a, b) == stats.paired_bootstrap(a, b)
    x, y = rng.random(100), rng.random(100)  # continuous scores: quantiles off the 1/n grid show the seed
    assert stats.paired_bootstrap(x, y, seed=1, resamples=500) != stats.paired_bootstrap(
        x, y, seed=2, resamples=500
    )
    assert stats.paired_bootstrap(np.zeros(20), np.zeros(20)) == stats.Interval(0.0, 0.0, 0.0)
    assert all(
        math.isnan(v) for v in (stats.paired_bootstrap([], []).diff, stats.paired_bootstrap([], []).low)
    )
    with pytest.raises(ValueError, match="one length"):
        stats.paired_bootstrap(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------- unpaired
def test_newcombe_interval_hand_value_and_fisher():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, 56/70 − 48/80, method 10: 0.0524 to 0.3339
    result = stats.independent_difference(56, 70, 48, 80)
    assert result.diff == pytest.approx(0.2)
    assert (result.low, result.high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert stats.independent_difference(3, 3, 0, 3).pvalue == pytest.approx(0.1)  # Fisher: 2 / C(6, 3)
    assert math.isnan(stats.independent_difference(1, 0, 1, 5).low)


# --------------------------------------------------------------------- the verdict on synthetic paired tables
def _verdict(a, b, clusters=None):
    interval = stats.paired_bootstrap(a, b, clusters)
    test = stats.mcnemar_test(a, b)
    return stats.verdict(interval.low, interval.high, test.pvalue, "A more robust", "B more robust"), interval


def test_verdict_detects_a_known_difference():
    # 3 seeds × 200 persons: B is fooled on 40 % of them, A on 25 % (a subset of B's): A is more robust
    rng = np.random.default_rng(11)
    b = rng.random(600) < 0.40
    a = b & (rng.random(600) < 0.625)
    text, interval = _verdict(a, b, np.repeat([0, 1, 2], 200))
    assert text == "A more robust"
    assert interval.high < 0 and interval.low < a.mean() - b.mean() < interval.high
    assert _verdict(b, a)[0] == "B more robust"  # the same table the other way round


def test_verdict_without_a_difference():
    # the same success rate for both, the discordant pairs split evenly: nothing to detect
    a, b = _paired(both=50, only_a=20, only_b=20, neither=510)
    text, interval = _verdict(a, b)
    assert text == stats.NO_DIFFERENCE and interval.low < 0 < interval.high
    assert _verdict(a, a)[0] == stats.NO_DIFFERENCE  # identical outcomes: interval [0, 0]


def test_verdict_needs_the_exact_test_when_few_pairs_are_discordant():
    # 5 of 600 pairs, all one way: the bootstrap interval excludes 0, McNemar's exact p is 2/32 = 0.0625
    a, b = _paired(both=0, only_a=5, only_b=0, neither=595)
    interval = stats.paired_bootstrap(a, b)
    assert interval.low > 0
    assert stats.mcnemar_test(a, b).pvalue == pytest.approx(0.0625)
    assert _verdict(a, b)[0] == stats.NO_DIFFERENCE
    assert stats.verdict(0.01, 0.05, 0.01, "A more robust", "B more robust") == "B more robust"
    assert stats.verdict(-0.01, 0.05, 0.01, "A more robust", "B more robust") == stats.NO_DIFFERENCE
    assert stats.verdict(float("nan"), float("nan"), float("nan"), "x", "y") == stats.NO_DIFFERENCE
