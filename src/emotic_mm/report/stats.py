"""The report's statistics: intervals for rates, tests and intervals for differences, and the verdict rule.

Every measure here is a proportion of persons (or targets) an attacker succeeded on. The choices follow
what a careful robustness study reports (docs/study.md):

* one proportion → **Wilson** score interval (:func:`wilson`) (the certificates' one-sided Clopper–Pearson
  bound is :func:`emotic_mm.defenses.certify.clopper_pearson_lower`);
* a *paired* difference (two models attacked on the same persons with the same seeds) → a **paired
  bootstrap** percentile interval, resampling persons within each seed (:func:`paired_bootstrap`), and the
  **exact McNemar** test on the discordant pairs (:func:`mcnemar_test`);
* an *unpaired* difference (only counts known, e.g. two poisoned models' ASR) → **Newcombe**'s hybrid
  score interval and Fisher's exact test (:func:`independent_difference`);
* :func:`verdict`: "A more robust" only when the difference's interval excludes 0 *and* the exact test
  agrees; otherwise "no difference detected at this n".

The functions take counts or boolean arrays and return plain floats (NaN where nothing was measured), so
the tables can hold them as they are and ``report.json`` as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import fisher_exact
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from emotic_mm.measures import median_needed  # noqa: F401  (recorded by the pixel recipe; one statistics namespace)

ALPHA = 0.05  # every interval is 95 %, every test at 5 %
RESAMPLES = 10_000  # bootstrap resamples: the 2.5 % quantile then rests on 250 resamples
BOOTSTRAP_SEED = 0  # fixed, so the same runs always give the same report
NO_DIFFERENCE = "no difference detected at this n"


# --------------------------------------------------------------------------- one proportion
def wilson(successes: float, n: float, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval of ``successes / n``; ``(nan, nan)`` when ``n`` is 0 or unknown.

    Why Wilson: the Wald interval p ± z·√(p(1−p)/n) has zero width at 0 or n successes and undercovers
    near the ends — exactly where attack success rates sit (a robust model: 0 of 200 fooled). Wilson keeps
    close to 95 % coverage there and at small n, and is never outside [0, 1]."""
    if _unknown(n) or n <= 0 or _unknown(successes):
        return math.nan, math.nan
    low, high = proportion_confint(int(round(successes)), int(round(n)), alpha=alpha, method="wilson")
    return float(low), float(high)


# --------------------------------------------------------------------------- paired differences
@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired binary outcomes: ``only_a`` pairs where A succeeded and B did not, ``only_b``
    the reverse; the concordant pairs carry no information about the difference."""

    only_a: int
    only_b: int
    pvalue: float


def mcnemar_test(a: Sequence[bool] | np.ndarray, b: Sequence[bool] | np.ndarray) -> McNemar:
    """McNemar's test of "A and B succeed equally often" on paired outcomes ``a[i]``, ``b[i]``.

    Why: with paired outcomes only the discordant pairs are informative, and under the null each is
    equally likely to go either way: an exact binomial test on them, cheap at any n (so no χ²
    approximation is needed). No discordant pair: p = 1."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return McNemar(only_a, only_b, 1.0)
    table = [[int((a & b).sum()), only_a], [only_b, int((~a & ~b).sum())]]
    return McNemar(only_a, only_b, float(mcnemar(table, exact=True).pvalue))


@dataclass(frozen=True)
class Interval:
    """A difference (A − B) and its 95 % interval."""

    diff: float
    low: float
    high: float


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    clusters: Sequence | np.ndarray | None = None,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    alpha: float = ALPHA,
) -> Interval:
    """Percentile bootstrap interval of ``mean(a) − mean(b)`` over pairs ``(a[i], b[i])``.

    Why paired: both variants were attacked on the same persons, so a hard person is hard for both;
    resampling *pairs* keeps that correlation and gives a much narrower, honest interval than two
    independent intervals. Why clustered: with several model seeds the pairs of a seed share one model
    each, so persons are resampled *within* each seed (``clusters``) and the seeds pooled, keeping every
    seed's weight fixed as in the estimate. (With 3 seeds, resampling the seeds themselves would be
    meaningless; the per-seed spread is reported beside the interval instead.)

    Resampling ``n`` pairs with replacement only matters through how often each distinct value of
    ``a − b`` is drawn, so each cluster is drawn as one multinomial over its distinct differences: the
    same bootstrap distribution as drawing indices, in O(resamples) memory. Seeded, so a report is
    reproducible. NaN interval for no pairs."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes need two 1-d arrays of one length, got {a.shape} and {b.shape}")
    if len(a) == 0:
        return Interval(math.nan, math.nan, math.nan)
    groups = (
        np.zeros(len(a), int) if clusters is None else np.unique(np.asarray(clusters), return_inverse=True)[1]
    )
    diff = a - b
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for g in np.unique(groups):
        values, counts = np.unique(diff[groups == g], return_counts=True)
        draws = rng.multinomial(counts.sum(), counts / counts.sum(), size=resamples)
        total += draws @ values
    boot = total / len(a)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return Interval(float(diff.mean()), float(low), float(high))


# --------------------------------------------------------------------------- unpaired differences
@dataclass(frozen=True)
class Independent:
    """A − B of two independent proportions, its Newcombe interval and Fisher's exact p."""

    diff: float
    low: float
    high: float
    pvalue: float


def independent_difference(
    successes_a: float, n_a: float, successes_b: float, n_b: float, alpha: float = ALPHA
) -> Independent:
    """Difference of two proportions measured on different persons or only known as counts.

    Why Newcombe (hybrid score, his method 10): it combines the two Wilson intervals, so it inherits
    their good coverage near 0 and 1 where Wald's difference interval fails (ASR of 0 % vs 98 %); Fisher's
    exact test is the matching test that needs no large-sample approximation. NaN without both n's."""
    if any(_unknown(v) for v in (successes_a, n_a, successes_b, n_b)) or n_a <= 0 or n_b <= 0:
        return Independent(math.nan, math.nan, math.nan, math.nan)
    ka, na, kb, nb = (int(round(v)) for v in (successes_a, n_a, successes_b, n_b))
    low, high = confint_proportions_2indep(ka, na, kb, nb, method="newcomb", compare="diff", alpha=alpha)
    pvalue = fisher_exact([[ka, na - ka], [kb, nb - kb]]).pvalue
    return Independent(ka / na - kb / nb, float(low), float(high), float(pvalue))


# --------------------------------------------------------------------------- the verdict
def verdict(low: float, high: float, pvalue: float, lower: str, higher: str, alpha: float = ALPHA) -> str:
    """The verdict on a difference A − B of success rates from its interval ``[low, high]`` and test p.

    ``lower`` is said when A's rate is reliably lower (e.g. "joint more robust"), ``higher`` when it is
    reliably higher; anything else is :data:`NO_DIFFERENCE`. Why both interval and test: the bootstrap
    percentile interval is too narrow when only a handful of pairs are discordant (5 of 600 pairs all going
    one way give an interval that excludes 0, while the exact McNemar p is 0.06), so a verdict needs the
    interval to exclude 0 and the exact test to reject; where there are enough discordant pairs they agree."""
    if any(_unknown(v) for v in (low, high, pvalue)) or pvalue >= alpha:
        return NO_DIFFERENCE
    if high < 0:
        return lower
    if low > 0:
        return higher
    return NO_DIFFERENCE


def _unknown(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
