"""The sample-ratio check: do the distinct units per version match the split's weights?

A broken split (a cache serving the old version, a client dropping one arm's events) skews
every comparison without showing in any metric, so the units themselves are tested:
Pearson's chi-squared goodness of fit, expected units E_i = N · w_i / Σw, K - 1 degrees of
freedom, flagged at p < 0.001 as GrowthBook does. The survival function comes from SciPy
(``chdtrc``), as compare's Student's t does.

This is a fixed-horizon test: a guard that runs it at every look must count it within its
error budget (or use a sequential form).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.special import chdtrc, gammaln

THRESHOLD = 0.001
# Below this many expected units in some arm the chi-squared approximation is poor: no flag.
MIN_EXPECTED = 8.0


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """The test's statistic and p-value, and whether the split is flagged as broken."""

    statistic: float
    degrees_of_freedom: int
    p_value: float
    enough_data: bool
    mismatch: bool


def _check(units: Sequence[int], weights: Sequence[float]) -> None:
    """One positive, finite weight per version, at least two versions, no negative count."""
    if len(units) != len(weights) or len(units) < 2:
        raise ValueError("need one weight per version and at least two versions")
    if any(weight <= 0 or not math.isfinite(weight) for weight in weights):
        raise ValueError("weights must be positive and finite")
    if any(count < 0 for count in units):
        raise ValueError("unit counts cannot be negative")


def sample_ratio(
    units: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = THRESHOLD,
    min_expected: float = MIN_EXPECTED,
) -> SampleRatio:
    """Test the distinct units per version against the split's weights (same order).

    Versions with weight zero are the caller's to leave out: they expect no units.
    The minimum is on expected units, not observed ones, so an arm that gets none is caught.
    """
    _check(units, weights)
    total_units = sum(units)
    total_weight = math.fsum(weights)
    expected = [total_units * weight / total_weight for weight in weights]
    degrees = len(units) - 1
    if total_units == 0:
        return SampleRatio(0.0, degrees, 1.0, False, False)
    statistic = math.fsum(
        (count - want) ** 2 / want for count, want in zip(units, expected, strict=True)
    )
    p_value = float(chdtrc(degrees, statistic))
    enough = min(expected) >= min_expected
    return SampleRatio(statistic, degrees, p_value, enough, enough and p_value < threshold)


SEQUENTIAL_CONCENTRATION = 10_000.0
"""Prior concentration of the sequential test's Dirichlet (Lindon & Malek, arXiv 2020): large, so
the prior hugs the split's weights and small mismatches need many units to show."""


def sequential_sample_ratio(
    units: Sequence[int],
    weights: Sequence[float],
    *,
    previous: float = 1.0,
    concentration: float = SEQUENTIAL_CONCENTRATION,
) -> float:
    """The always-valid p-value of the split after this look: ``min(previous, 1 / BF)``.

    BF is the Dirichlet-multinomial Bayes factor of "the units follow some other ratio"
    against "they follow ``weights``" (Lindon & Malek, "Anytime-valid inference for
    multinomial count data", NeurIPS 2022): with prior a_i = c·w_i, A = Σa_i and N units,
    ln BF = ln Γ(A) - ln Γ(A + N) + Σ[ln Γ(a_i + x_i) - ln Γ(a_i)] - Σ x_i ln w_i.
    Under a sound split, the chance that this p-value ever falls below p is at most p,
    however often it is read: the guard can look every few seconds and still flag at
    p < 0.001 with a false alarm rate of at most 0.001 per split.
    """
    _check(units, weights)
    total_weight = math.fsum(weights)
    shares = [weight / total_weight for weight in weights]
    priors = [concentration * share for share in shares]
    total = sum(units)
    log_factor = float(gammaln(concentration) - gammaln(concentration + total))
    for count, prior, share in zip(units, priors, shares, strict=True):
        log_factor += float(gammaln(prior + count) - gammaln(prior)) - count * math.log(share)
    p_value = math.exp(-log_factor) if log_factor > 0 else 1.0
    return min(previous, p_value)
