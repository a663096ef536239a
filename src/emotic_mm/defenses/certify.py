"""L0 certificates of randomized ablation (Levine & Feizi, AAAI 2020), vectorised over persons.

Why our own code: no library certifies a multimodal model against few-pixel (L0) attacks — ART's
certifiers cover Gaussian (L2) smoothing and patch smoothing of single-input classifiers — and the paper's
reference code computes radii with Python factorials one radius at a time. Here every function takes
arrays of persons; binomials are handled in log space (``scipy.special.gammaln``), so d = 224² pixels is
as cheap as d = 64².

**The bound** (the paper's certificate for majority votes; checked against the reference
``utils_color.py``: ``certify``, ``lc_bound``, ``population_radius_for_majority``). Let d be the pixel
count of the picture (H·W; the kept positions are shared by the colour channels), k the kept pixels, and
``Δ(ρ) = 1 − C(d − ρ, k) / C(d, k)`` the probability that a uniform k-subset touches at least one of ρ
given pixels. For any x' differing from x in at most ρ pixels, ``p_c(x') ≥ p_c(x) − Δ(ρ)`` for every
class c, because the base classifier sees the same input whenever its kept set misses the changed pixels.
So if a lower bound p_A of the top class's probability satisfies ``p_A − Δ(ρ) > 0.5``, class A keeps a
strict majority — the smoothed prediction cannot change — within L0 radius ρ. The certified radius is the
largest such ρ (at most d − k; Δ = 1 beyond). When p_A ≤ 0.5 not even ρ = 0 holds: the person is
*abstained* (radius −1). This is the reference code's criterion ``1.5 − p_A < C(d−ρ,k)/C(d,k)``; the
reference folds abstention into radius 0, we keep them apart (radius 0 = the prediction at x itself is
certified to be the smoothed classifier's).

**Two rounds** (as the reference and Cohen et al.'s ``CERTIFY``): the class is *selected* on n0 samples,
then its count among n fresh samples is bounded below by a one-sided Clopper–Pearson bound at level
1 − α (the reference: ``proportion_confint(count, n, alpha=2·alpha, method="beta")[0]``, i.e. the lower
end of the two-sided 1 − 2α interval). The reference's default is α = 0.05, n0 = 1000, n = 10 000.
Selecting on separate samples keeps the estimation round an honest binomial sample of a fixed class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln

from emotic_mm.errors import ConfigError

REPORT_RADII = (0, 1, 2, 5, 10, 20)


def _array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_alpha(alpha: float) -> float:
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"defense.alpha={alpha!r} must lie strictly between 0 and 1")
    return float(alpha)


def clopper_pearson_lower(count: Any, n: Any, alpha: float) -> np.ndarray:
    """One-sided (1 − α) Clopper–Pearson lower bound on a binomial proportion, elementwise: the lower end
    of statsmodels' two-sided "beta" interval at level 2α (0 where count = 0)."""
    from statsmodels.stats.proportion import proportion_confint

    alpha = _check_alpha(alpha)
    count, n = np.broadcast_arrays(_array(count).astype(np.float64), _array(n).astype(np.float64))
    if np.any(n < 1) or np.any(count < 0) or np.any(count > n):
        raise ValueError("clopper_pearson_lower needs 0 <= count <= n and n >= 1")
    return np.asarray(proportion_confint(count, n, alpha=2 * alpha, method="beta")[0], dtype=np.float64)


def _check_dk(d: int, k: int) -> None:
    if d < 1 or k < 1 or k > d:
        raise ConfigError(f"defense.keep={k} must lie between 1 and the {d} pixels of the certified picture")


def log_binomial(n: Any, k: Any) -> np.ndarray:
    """log C(n, k) for n >= k >= 0 (elementwise)."""
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def delta(d: int, k: int, rho: Any) -> np.ndarray:
    """Δ(ρ) = 1 − C(d − ρ, k) / C(d, k): the chance that k uniformly kept pixels of d include at least one of
    ρ given pixels (1 when d − ρ < k). Elementwise over ``rho`` (integers ≥ 0)."""
    d, k = int(d), int(k)
    _check_dk(d, k)
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(rho < 0):
        raise ValueError("delta needs rho >= 0")
    out = np.ones_like(rho)
    ok = d - rho >= k
    log_ratio = log_binomial(d - rho[ok], k) - log_binomial(d, k)
    out[ok] = -np.expm1(log_ratio)  # 1 − exp(log ratio), accurate when the ratio is close to 1
    return out


def certified_radius(p_lower: Any, d: int, k: int) -> np.ndarray:
    """Largest ρ in 0 .. d − k with ``p_lower − Δ(ρ) > 0.5`` per person; −1 (abstain) when p_lower ≤ 0.5."""
    d, k = int(d), int(k)
    _check_dk(d, k)
    p = _array(p_lower).astype(np.float64)
    grid = np.maximum.accumulate(delta(d, k, np.arange(d - k + 1)))  # increasing in ρ; guard rounding
    # number of ρ with Δ(ρ) < p − 0.5 (strict), minus one; none (p ≤ 0.5) gives −1
    return np.searchsorted(grid, p - 0.5, side="left").astype(np.int64) - 1


@dataclass(frozen=True)
class Certificates:
    """Per-person outcome of :func:`certify` (arrays of length B)."""

    prediction: np.ndarray  # selected class (top of the selection round)
    count: np.ndarray  # its votes in the estimation round
    n: np.ndarray  # estimation samples
    p_lower: np.ndarray  # Clopper–Pearson lower bound of its probability
    radius: np.ndarray  # certified L0 radius in pixels; −1 = abstained
    d: int
    k: int
    alpha: float

    @property
    def abstained(self) -> np.ndarray:
        return self.radius < 0

    def rows(self) -> list[dict[str, Any]]:
        """One dict per person (for ``certificates.csv``; the caller adds the person index)."""
        return [
            {
                "prediction": int(c),
                "votes": int(v),
                "samples": int(n),
                "p_lower": float(p),
                "radius": int(r),
                "abstained": bool(r < 0),
            }
            for c, v, n, p, r in zip(self.prediction, self.count, self.n, self.p_lower, self.radius)
        ]


def certify(votes_selection: Any, votes_estimation: Any, d: int, k: int, alpha: float = 0.05) -> Certificates:
    """The paper's two-round certification from vote counts (B, classes): select the top class of
    ``votes_selection`` (n0 samples; ties → lowest index), bound its share of ``votes_estimation`` (n fresh
    samples) from below at level 1 − α, and turn the bound into a radius (−1 = abstain)."""
    sel, est = _array(votes_selection), _array(votes_estimation)
    if sel.ndim != 2 or est.shape != sel.shape:
        raise ValueError(f"vote counts must both be (persons, classes), got {sel.shape} and {est.shape}")
    n = est.sum(axis=1)
    if sel.shape[0] and (np.any(n < 1) or np.any(sel.sum(axis=1) < 1)):
        raise ConfigError("defense.samples and defense.selection_samples must be at least 1")
    prediction = sel.argmax(axis=1)
    count = est[np.arange(est.shape[0]), prediction]
    p_lower = clopper_pearson_lower(count, n, alpha) if sel.shape[0] else np.zeros(0)
    radius = certified_radius(p_lower, d, k)
    return Certificates(
        prediction=prediction.astype(np.int64),
        count=count.astype(np.int64),
        n=n.astype(np.int64),
        p_lower=p_lower,
        radius=radius,
        d=int(d),
        k=int(k),
        alpha=float(alpha),
    )


def certified_accuracy(radius: Any, correct: Any, radii: Sequence[int] = REPORT_RADII) -> dict[int, float]:
    """Share of persons whose prediction is correct and certified at least to each radius r."""
    radius, correct = _array(radius), _array(correct).astype(bool)
    if radius.shape != correct.shape:
        raise ValueError("radius and correct must have one entry per person")
    if radius.size == 0:
        return {int(r): float("nan") for r in radii}
    return {int(r): float(np.mean(correct & (radius >= r))) for r in radii}


def median_certified_radius(radius: Any, correct: Any) -> float:
    """Median over all persons of the radius, counting wrong predictions as −1 (the reference's convention,
    which the paper's "median certified robustness" is computed with)."""
    radius, correct = _array(radius), _array(correct).astype(bool)
    if radius.size == 0:
        return float("nan")
    return float(np.median(np.where(correct, radius, -1)))
