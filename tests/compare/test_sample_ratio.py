"""The sample-ratio check against SciPy, closed forms, and a broken split it must catch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from compare.sample_ratio import sample_ratio


@pytest.mark.parametrize(
    ("units", "weights"),
    [
        ([5_000, 5_100], [1, 1]),
        ([9_000, 190_000], [5, 95]),
        ([1_020, 2_010, 2_950], [1, 2, 3]),
        ([40, 55, 61, 30], [0.25, 0.25, 0.25, 0.25]),
        ([100_000, 99_500], [50, 50]),
    ],
)
def test_matches_scipy_chisquare(units: list[int], weights: list[float]) -> None:
    expected = np.array(weights, dtype=float) / sum(weights) * sum(units)
    reference = scipy_stats.chisquare(units, f_exp=expected)
    result = sample_ratio(units, weights)
    assert result.degrees_of_freedom == len(units) - 1
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.mismatch == (reference.pvalue < 0.001)


@pytest.mark.parametrize("units", [[510, 490], [5_200, 4_800], [1_000, 1_100]])
def test_two_arms_match_the_closed_form(units: list[int]) -> None:
    """With one degree of freedom the survival function is erfc(√(x/2))."""
    result = sample_ratio(units, [1, 1])
    half = sum(units) / 2
    statistic = sum((count - half) ** 2 / half for count in units)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)), rel=1e-9)


def test_three_arms_match_the_closed_form() -> None:
    """With two degrees of freedom the survival function is exp(-x/2)."""
    result = sample_ratio([330, 300, 370], [1, 1, 1])
    assert result.p_value == pytest.approx(math.exp(-result.statistic / 2), rel=1e-9)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize(("units", "weights"), [(20_000, [50, 50]), (200_000, [95, 5])])
def test_dropping_a_tenth_of_one_arm_is_caught(seed: int, units: int, weights: list[int]) -> None:
    rng = np.random.default_rng(seed)
    probabilities = np.array(weights) / sum(weights)
    healthy = rng.multinomial(units, probabilities)
    assert not sample_ratio(healthy.tolist(), weights).mismatch
    broken = healthy.copy()
    smallest = int(np.argmin(probabilities))
    broken[smallest] -= rng.binomial(int(broken[smallest]), 0.1)
    result = sample_ratio(broken.tolist(), weights)
    assert result.enough_data and result.mismatch


def test_an_arm_that_gets_no_units_is_caught_once_enough_are_expected() -> None:
    assert not sample_ratio([0, 10], [1, 1]).mismatch  # 5 expected a side: too few to say
    starved = sample_ratio([0, 20], [1, 1])
    assert starved.enough_data and starved.mismatch
    nothing = sample_ratio([0, 0], [1, 1])
    assert (nothing.p_value, nothing.enough_data, nothing.mismatch) == (1.0, False, False)


@pytest.mark.parametrize(
    ("units", "weights"),
    [([1, 2], [1]), ([5], [1]), ([3, 4], [1, 0]), ([3, 4], [1, math.inf]), ([-1, 4], [1, 1])],
)
def test_malformed_input_is_refused(units: list[int], weights: list[float]) -> None:
    with pytest.raises(ValueError, match=r"weight|version|negative"):
        sample_ratio(units, weights)
