"""Comparing a version with the baseline from counts, sums and sums of squares alone.

The warehouse keeps no samples, only what the hourly aggregates add up (n, Σx, Σx²), and
that is all the two tests need:

- means: Welch's t-test (unequal variances), with the Welch-Satterthwaite degrees of
  freedom and a 95% confidence interval for the difference of means;
- rates: the two-proportion z-test (pooled standard error for the p-value, unpooled for the
  95% confidence interval of the difference, the usual Wald interval).

Student's t distribution comes from SciPy (``stdtr``, ``stdtrit``: real-valued degrees of
freedom, as Welch's approximation produces); the normal one from the standard library.

Differences are always ``version - baseline``. A test needs at least two observations on
each side (one for rates); otherwise there is no comparison (None), not a made-up one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from scipy.special import stdtr, stdtrit

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
_Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


@dataclass(frozen=True, slots=True)
class Moments:
    """n, Σx and Σx² of one metric."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def mean(self) -> float | None:
        """The sample mean; None without observations."""
        return self.total / self.count if self.count else None

    @property
    def variance(self) -> float | None:
        """The unbiased sample variance; None with fewer than two observations.

        From sums, ``(Σx² - n·mean²) / (n - 1)`` can come out a hair below zero when the
        values are all equal; that is rounding, so it is clamped to zero.
        """
        if self.count < 2:
            return None
        mean = self.total / self.count
        return max(0.0, (self.total_sq - self.count * mean * mean) / (self.count - 1))

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.count + other.count, self.total + other.total, self.total_sq + other.total_sq
        )


@dataclass(frozen=True, slots=True)
class Difference:
    """A difference ``version - baseline``, its 95% confidence interval and p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str

    @property
    def significant(self) -> bool:
        """Whether the p-value is under 0.05."""
        return self.p_value < SIGNIFICANCE


def welch(version: Moments, baseline: Moments) -> Difference | None:
    """Welch's t-test of the difference of means; None without two observations each."""
    v_var, b_var = version.variance, baseline.variance
    if v_var is None or b_var is None or version.mean is None or baseline.mean is None:
        return None
    difference = version.mean - baseline.mean
    v_term, b_term = v_var / version.count, b_var / baseline.count
    standard_error = math.sqrt(v_term + b_term)
    if standard_error == 0.0:
        # Both versions constant: the difference is known exactly.
        return Difference(
            difference, difference, difference, 1.0 if difference == 0 else 0.0, "welch_t"
        )
    df = (v_term + b_term) ** 2 / (
        v_term**2 / (version.count - 1) + b_term**2 / (baseline.count - 1)
    )
    t = difference / standard_error
    half_width = float(stdtrit(df, 0.5 + CONFIDENCE / 2)) * standard_error
    return Difference(
        difference,
        difference - half_width,
        difference + half_width,
        min(1.0, 2.0 * float(stdtr(df, -abs(t)))),
        "welch_t",
    )


def two_proportions(
    version_hits: int, version_total: int, baseline_hits: int, baseline_total: int
) -> Difference | None:
    """The two-proportion z-test of the difference of rates; None if either side is empty."""
    if version_total <= 0 or baseline_total <= 0:
        return None
    p_version = version_hits / version_total
    p_baseline = baseline_hits / baseline_total
    difference = p_version - p_baseline
    pooled = (version_hits + baseline_hits) / (version_total + baseline_total)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / version_total + 1 / baseline_total))
    # A zero pooled error: both sides all positive or all negative, so no difference.
    p_value = 1.0 if pooled_se == 0.0 else 2.0 * NormalDist().cdf(-abs(difference) / pooled_se)
    wald_se = math.sqrt(
        p_version * (1 - p_version) / version_total + p_baseline * (1 - p_baseline) / baseline_total
    )
    return Difference(
        difference,
        difference - _Z * wald_se,
        difference + _Z * wald_se,
        p_value,
        "two_proportion_z",
    )
