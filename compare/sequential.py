"""Always-valid confidence sequences for the difference of two arms' means.

compare's Welch and two-proportion tests are fixed-horizon: read once, they err 5% of the
time, but a guard that reads them at every look and acts on the first hit errs far more
often. The normal-mixture confidence sequence (Howard, Ramdas, McAuliffe, Sekhon, Annals
of Statistics 2021; the asymptotic form GrowthBook and Eppo use) stays valid however often
it is read: with probability 1 - alpha it holds the true difference at every look at once.

With N the units of both arms so far, s² = N · Var(estimate) and N* the tuning sample size
(the N at which the sequence is tightest):

- rho² = (-2 ln alpha + ln(1 - 2 ln alpha)) / N*
- two-sided half-width: s · √( 2(N·rho² + 1) / (N²·rho²) · ln( √(N·rho² + 1) / alpha ) )
- one-sided (a bound on one side only): 2·alpha in place of alpha in rho², and the log term is
  ln( 1 + √(N·rho² + 1) / (2·alpha) ).

Only counts, means and variances are needed, which is what the hourly aggregates hold.
Differences are ``candidate - baseline``; the relative form divides by |baseline mean|
and takes its variance by the delta method. docs/rollouts.md explains it in plain words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from compare.stats import Moments

ALPHA = 0.05
# GrowthBook's default: the sequence is tightest at 5,000 units across both arms.
TUNING_SAMPLE_SIZE = 5_000


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm's observations of a metric: count, mean and per-unit sample variance.

    ``events`` is the number of positives for a binary metric (None otherwise), so that a
    guard can ask for a minimum of them before deciding.
    """

    count: int
    mean: float
    variance: float
    events: int | None = None

    @classmethod
    def from_moments(cls, moments: Moments) -> Arm | None:
        """From n, Σx and Σx² (compare's aggregates); None with fewer than two values."""
        mean, variance = moments.mean, moments.variance
        if mean is None or variance is None:
            return None
        return cls(moments.count, mean, variance)

    @classmethod
    def from_rate(cls, hits: int, total: int) -> Arm | None:
        """A binary metric: mean p and Bernoulli variance p(1 - p); None when empty."""
        if total <= 0:
            return None
        rate = hits / total
        return cls(total, rate, rate * (1.0 - rate), events=hits)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A difference ``candidate - baseline`` (or relative to the baseline) and its variance."""

    value: float
    variance: float
    units: int
    relative: bool


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence sequence's value at one look; a one-sided one has an infinite end."""

    estimate: float
    low: float
    high: float
    alpha: float
    relative: bool


def difference(candidate: Arm, baseline: Arm, *, relative: bool = False) -> Estimate | None:
    """The estimate and its variance; None without two values a side or, relative, a zero baseline.

    Relative: (c̄ - b̄) / |b̄|, variance by the delta method,
    Var(c̄)/b̄² + c̄² Var(b̄)/b̄⁴ (the sign of b̄ drops out of both terms).
    """
    if candidate.count < 2 or baseline.count < 2:
        return None
    var_candidate = candidate.variance / candidate.count
    var_baseline = baseline.variance / baseline.count
    units = candidate.count + baseline.count
    if not relative:
        return Estimate(candidate.mean - baseline.mean, var_candidate + var_baseline, units, False)
    if baseline.mean == 0.0:
        return None
    scale = abs(baseline.mean)
    value = (candidate.mean - baseline.mean) / scale
    variance = var_candidate / scale**2 + candidate.mean**2 * var_baseline / scale**4
    return Estimate(value, variance, units, True)


def mixture_rho_squared(alpha: float, tuning_sample_size: float) -> float:
    """rho², the mixture's precision per unit, chosen so the sequence is tightest at N*."""
    _check(alpha, tuning_sample_size)
    log_alpha = math.log(alpha)
    return (-2.0 * log_alpha + math.log(1.0 - 2.0 * log_alpha)) / tuning_sample_size


def two_sided_half_width(
    estimate: Estimate, *, alpha: float = ALPHA, tuning_sample_size: float = TUNING_SAMPLE_SIZE
) -> float:
    """The half-width of the two-sided sequence at level 1 - alpha."""
    rho2 = mixture_rho_squared(alpha, tuning_sample_size)
    growth = estimate.units * rho2 + 1.0
    return _scaled(estimate, rho2, growth, math.log(math.sqrt(growth) / alpha))


def one_sided_half_width(
    estimate: Estimate, *, alpha: float = ALPHA, tuning_sample_size: float = TUNING_SAMPLE_SIZE
) -> float:
    """How far the one-sided bound at level 1 - alpha lies from the estimate (alpha below 1/2)."""
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"a one-sided alpha must lie strictly between 0 and 0.5, not {alpha}")
    rho2 = mixture_rho_squared(2.0 * alpha, tuning_sample_size)
    growth = estimate.units * rho2 + 1.0
    return _scaled(estimate, rho2, growth, math.log1p(math.sqrt(growth) / (2.0 * alpha)))


def confidence_sequence(
    candidate: Arm,
    baseline: Arm,
    *,
    alpha: float = ALPHA,
    tuning_sample_size: float = TUNING_SAMPLE_SIZE,
    relative: bool = False,
) -> Interval | None:
    """The two-sided always-valid interval for ``candidate - baseline``; None as `difference`."""
    estimate = difference(candidate, baseline, relative=relative)
    if estimate is None:
        return None
    width = two_sided_half_width(estimate, alpha=alpha, tuning_sample_size=tuning_sample_size)
    return Interval(estimate.value, estimate.value - width, estimate.value + width, alpha, relative)


def _scaled(estimate: Estimate, rho2: float, growth: float, log_term: float) -> float:
    """s · √(2(N·rho² + 1)/(N²·rho²) · log term), with s² = N · Var(estimate)."""
    units = estimate.units
    s2 = units * estimate.variance
    return math.sqrt(s2 * 2.0 * growth / (units * units * rho2) * log_term)


def _check(alpha: float, tuning_sample_size: float) -> None:
    """Parameters out of range are a caller's mistake, not data: refuse them."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    if not tuning_sample_size > 0:
        raise ValueError(f"the tuning sample size must be positive, not {tuning_sample_size}")
