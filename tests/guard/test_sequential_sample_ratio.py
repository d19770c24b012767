"""The sequential sample-ratio test: its Bayes factor by other routes, and its false alarms.

``sequential_sample_ratio`` computes ln BF in closed form with ``gammaln``. Here the same
Bayes factor comes, for small counts, from the Pólya urn (the Dirichlet-multinomial's
predictive probabilities multiplied unit by unit, in exact fractions), and for large counts
from SciPy's Dirichlet-multinomial and multinomial pmfs (their multinomial coefficients
cancel). Then, over seeded sound splits read at 50 looks each, the share whose running
p-value ever falls below 0.01 stays under 0.01 plus two binomial standard errors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as scipy_stats

from compare.sample_ratio import SEQUENTIAL_CONCENTRATION, sequential_sample_ratio


def _urn_bayes_factor(units: list[int], weights: list[int], concentration: int) -> Fraction:
    """P(a sequence | Dirichlet(c·w) prior) / P(it | the weights), unit after unit.

    Under the prior, the next unit goes to version i with probability
    (a_i + units of i so far) / (A + units so far); under the weights, with w_i / Σw. The
    order of arrival does not matter: the units of version 0 first, then of 1, and so on.
    """
    total_weight = sum(weights)
    priors = [Fraction(concentration * weight, total_weight) for weight in weights]
    prior_total = sum(priors, Fraction(0))
    seen = 0
    factor = Fraction(1)
    for version, count in enumerate(units):
        for already in range(count):
            predictive = (priors[version] + already) / (prior_total + seen)
            factor *= predictive / Fraction(weights[version], total_weight)
            seen += 1
    return factor


@pytest.mark.parametrize(
    ("units", "weights", "concentration"),
    [
        ([9, 1], [1, 1], 2),
        ([12, 0], [1, 1], 4),
        ([2, 14], [1, 3], 4),
        ([0, 3, 17], [1, 1, 2], 8),
        ([30, 10], [1, 1], 10),
        ([5, 5], [1, 1], 2),  # no evidence against the split: p stays 1
    ],
)
def test_the_bayes_factor_is_the_polya_urn_product(
    units: list[int], weights: list[int], concentration: int
) -> None:
    factor = _urn_bayes_factor(units, weights, concentration)
    expected = min(1.0, float(1 / factor))
    result = sequential_sample_ratio(
        units, [float(weight) for weight in weights], concentration=float(concentration)
    )
    assert result == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("units", "weights"),
    [
        ([5_600, 4_400], [1.0, 1.0]),
        ([10_000, 9_000], [50.0, 50.0]),
        ([1_030, 2_100, 2_870], [1.0, 2.0, 3.0]),
        ([189_000, 9_000], [95.0, 5.0]),
        ([40_000, 41_000, 38_500, 40_500], [1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_the_bayes_factor_is_the_ratio_of_scipys_pmfs(
    units: list[int], weights: list[float]
) -> None:
    total = sum(units)
    shares = np.array(weights) / sum(weights)
    log_factor = float(
        scipy_stats.dirichlet_multinomial.logpmf(units, SEQUENTIAL_CONCENTRATION * shares, total)
        - scipy_stats.multinomial.logpmf(units, total, shares)
    )
    assert log_factor > 0, "a case with evidence against the split"
    result = sequential_sample_ratio(units, weights)
    assert math.log(result) == pytest.approx(-log_factor, rel=1e-7, abs=1e-7)


def test_the_p_value_is_the_running_minimum() -> None:
    fresh = sequential_sample_ratio([5_600, 4_400], [1.0, 1.0])
    assert 0.0 < fresh < 1.0
    assert sequential_sample_ratio([5_600, 4_400], [1.0, 1.0], previous=fresh / 2) == fresh / 2
    assert sequential_sample_ratio([5_600, 4_400], [1.0, 1.0], previous=0.9) == fresh
    assert sequential_sample_ratio([5_000, 5_000], [1.0, 1.0], previous=0.3) == 0.3


THRESHOLD = 0.01
SPLITS = 500
LOOKS = 50


@pytest.mark.parametrize("seed", [20261207, 15])
@pytest.mark.parametrize(
    ("weights", "per_look", "concentration"),
    [
        ([50, 50], 400, SEQUENTIAL_CONCENTRATION),
        ([95, 5], 400, SEQUENTIAL_CONCENTRATION),
        # A small concentration is quicker to flag, so it puts the bound to a harder test.
        ([50, 50], 40, 20.0),
        ([60, 30, 10], 40, 20.0),
    ],
)
def test_sound_splits_rarely_raise_a_false_alarm(
    seed: int, weights: list[int], per_look: int, concentration: float
) -> None:
    rng = np.random.default_rng(seed)
    shares = np.array(weights) / sum(weights)
    counts = rng.multinomial(per_look, shares, size=(SPLITS, LOOKS)).cumsum(axis=1)
    floats = [float(weight) for weight in weights]
    alarms = 0
    for split in counts:
        p_value = 1.0
        for units in split:
            p_value = sequential_sample_ratio(
                units.tolist(), floats, previous=p_value, concentration=concentration
            )
        alarms += p_value < THRESHOLD
    share = alarms / SPLITS
    bound = THRESHOLD + 2 * math.sqrt(THRESHOLD * (1 - THRESHOLD) / SPLITS)
    figures = (
        f"seed {seed}, weights {weights}, concentration {concentration}: "
        f"{SPLITS} sound splits x {LOOKS} looks, false alarms {share:.3f}, bound {bound:.4f}"
    )
    print(figures)
    assert share <= bound, figures
