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

from scipy.special import chdtrc

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
    if len(units) != len(weights) or len(units) < 2:
        raise ValueError("need one weight per version and at least two versions")
    if any(weight <= 0 or not math.isfinite(weight) for weight in weights):
        raise ValueError("weights must be positive and finite")
    if any(count < 0 for count in units):
        raise ValueError("unit counts cannot be negative")
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
