"""compare's statistics against SciPy, computed independently from the raw samples."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as scipy_stats

from compare.stats import Moments, two_proportions, welch


def _moments(samples: list[float]) -> Moments:
    return Moments(len(samples), math.fsum(samples), math.fsum(x * x for x in samples))


@pytest.mark.parametrize(
    ("seed", "sizes", "shift", "spreads"),
    [
        (1, (40, 55), 3.0, (10.0, 25.0)),
        (2, (8, 300), 0.0, (1.0, 1.0)),
        (3, (2_000, 1_500), 0.4, (5.0, 2.0)),
        (4, (3, 4), 10.0, (0.5, 9.0)),
    ],
)
def test_welch_matches_scipy_from_raw_samples(
    seed: int, sizes: tuple[int, int], shift: float, spreads: tuple[float, float]
) -> None:
    rng = random.Random(seed)
    version = [rng.gauss(100 + shift, spreads[0]) for _ in range(sizes[0])]
    baseline = [rng.gauss(100, spreads[1]) for _ in range(sizes[1])]
    result = welch(_moments(version), _moments(baseline))
    assert result is not None
    reference = scipy_stats.ttest_ind(version, baseline, equal_var=False)
    low, high = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(np.mean(version) - np.mean(baseline), rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-6)
    assert result.significant == (reference.pvalue < 0.05)


def test_welch_needs_two_observations_a_side_and_handles_constant_samples() -> None:
    assert welch(_moments([1.0]), _moments([1.0, 2.0])) is None
    assert welch(Moments(), _moments([1.0, 2.0])) is None
    same = welch(_moments([5.0, 5.0, 5.0]), _moments([5.0, 5.0]))
    assert same is not None and (same.difference, same.p_value) == (0.0, 1.0)
    apart = welch(_moments([6.0, 6.0]), _moments([5.0, 5.0]))
    assert apart is not None and (apart.difference, apart.p_value) == (1.0, 0.0)


def _two_proportion_reference(
    x1: int, n1: int, x2: int, n2: int
) -> tuple[float, float, float, float]:
    """The textbook test, written out independently: pooled z for p, Wald CI."""
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = 2 * scipy_stats.norm.sf(abs(z))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    critical = scipy_stats.norm.ppf(0.975)
    return p1 - p2, p_value, p1 - p2 - critical * se, p1 - p2 + critical * se


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(45, 100, 30, 100), (1, 3, 2, 3), (480, 1_000, 520, 1_000), (9_010, 10_000, 8_800, 10_000)],
)
def test_two_proportions_matches_the_textbook_test(x1: int, n1: int, x2: int, n2: int) -> None:
    result = two_proportions(x1, n1, x2, n2)
    assert result is not None
    difference, p_value, low, high = _two_proportion_reference(x1, n1, x2, n2)
    assert result.difference == pytest.approx(difference, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_two_proportions_agrees_with_a_chi_square_test_of_the_table() -> None:
    """The pooled z-test squared is Pearson's chi-square on the 2x2 table (no correction)."""
    result = two_proportions(45, 100, 30, 100)
    assert result is not None
    table = [[45, 55], [30, 70]]
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


def test_two_proportions_edge_cases() -> None:
    assert two_proportions(1, 0, 1, 2) is None
    all_positive = two_proportions(5, 5, 9, 9)
    assert all_positive is not None
    assert (all_positive.difference, all_positive.p_value) == (0.0, 1.0)


def test_moments_give_the_sample_variance() -> None:
    samples = [3.0, 7.5, 1.25, 9.0, 4.0]
    moments = _moments(samples)
    assert moments.mean == pytest.approx(np.mean(samples))
    assert moments.variance == pytest.approx(np.var(samples, ddof=1))
    assert (moments + moments).count == 10
