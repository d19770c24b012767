"""The always-valid confidence sequence: its formula, written independently, and its coverage."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from compare.sequential import (
    Arm,
    Estimate,
    confidence_sequence,
    difference,
    one_sided_half_width,
    two_sided_half_width,
)
from compare.stats import Moments, welch


def _howard_boundary(v: float, rho: float, alpha: float, *, one_sided: bool) -> float:
    """Howard et al. (2021), normal-mixture boundary on the sum S_t at intrinsic time v."""
    if one_sided:
        return math.sqrt(2 * (v + rho) * math.log(math.sqrt((v + rho) / rho) / (2 * alpha) + 1))
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * alpha**2)))


def _reference_half_width(
    estimate_variance: float, units: int, alpha: float, planned: float, *, one_sided: bool
) -> float:
    """The boundary on the sum of N per-unit terms of variance s², divided by N.

    Howard's rho (in units of intrinsic time) that is tightest at N* is s² · N* divided by
    (2 ln(1/a) + ln(1 + 2 ln(1/a))), with a = 2·alpha for a one-sided bound.
    """
    s2 = units * estimate_variance
    a = 2 * alpha if one_sided else alpha
    rho = s2 * planned / (2 * math.log(1 / a) + math.log(1 + 2 * math.log(1 / a)))
    return _howard_boundary(units * s2, rho, alpha, one_sided=one_sided) / units


@pytest.mark.parametrize(
    ("seed", "sizes", "locations", "spreads", "alpha", "planned"),
    [
        (1, (120, 130), (10.0, 10.5), (2.0, 3.0), 0.05, 5_000),
        (2, (2_000, 1_800), (0.3, 0.28), (0.1, 0.12), 0.05, 1_000),
        (3, (40, 900), (250.0, 240.0), (60.0, 40.0), 0.01, 20_000),
        (4, (5_000, 5_000), (1.0, 1.0), (1.0, 1.0), 0.1, 5_000),
    ],
)
def test_the_interval_is_the_published_formula(
    seed: int,
    sizes: tuple[int, int],
    locations: tuple[float, float],
    spreads: tuple[float, float],
    alpha: float,
    planned: int,
) -> None:
    rng = np.random.default_rng(seed)
    candidate = rng.normal(locations[0], spreads[0], sizes[0])
    baseline = rng.normal(locations[1], spreads[1], sizes[1])
    arms = [
        Arm.from_moments(Moments(len(x), float(x.sum()), float((x * x).sum())))
        for x in (candidate, baseline)
    ]
    assert arms[0] is not None and arms[1] is not None
    interval = confidence_sequence(arms[0], arms[1], alpha=alpha, tuning_sample_size=planned)
    assert interval is not None

    estimate_variance = candidate.var(ddof=1) / len(candidate) + baseline.var(ddof=1) / len(
        baseline
    )
    units = len(candidate) + len(baseline)
    width = _reference_half_width(estimate_variance, units, alpha, planned, one_sided=False)
    delta = candidate.mean() - baseline.mean()
    assert interval.estimate == pytest.approx(delta, rel=1e-9, abs=1e-12)
    assert (interval.low, interval.high) == pytest.approx((delta - width, delta + width), rel=1e-7)

    estimate = difference(arms[0], arms[1])
    assert estimate is not None
    one_sided = _reference_half_width(estimate_variance, units, alpha, planned, one_sided=True)
    assert one_sided_half_width(estimate, alpha=alpha, tuning_sample_size=planned) == pytest.approx(
        one_sided, rel=1e-7
    )
    # A one-sided bound spends all of alpha on one side, so it sits closer than the two-sided end.
    assert one_sided < width


def test_the_relative_difference_uses_the_delta_method() -> None:
    candidate, baseline = Arm(400, 1.2, 0.25), Arm(500, 1.0, 0.16)
    estimate = difference(candidate, baseline, relative=True)
    assert estimate is not None
    gradient = np.array([1 / baseline.mean, -candidate.mean / baseline.mean**2])
    covariance = np.diag([candidate.variance / candidate.count, baseline.variance / baseline.count])
    assert estimate.value == pytest.approx(0.2, rel=1e-12)
    assert estimate.variance == pytest.approx(float(gradient @ covariance @ gradient), rel=1e-12)
    # A negative baseline: the difference is still divided by its size, so worse stays worse.
    flipped = difference(Arm(400, -1.2, 0.25), Arm(500, -1.0, 0.16), relative=True)
    assert flipped is not None and flipped.value == pytest.approx(-0.2, rel=1e-12)
    assert flipped.variance == pytest.approx(estimate.variance, rel=1e-12)


def test_no_interval_without_data_or_a_relative_scale() -> None:
    assert confidence_sequence(Arm(1, 1.0, 0.0), Arm(50, 1.0, 1.0)) is None
    assert confidence_sequence(Arm(50, 1.0, 1.0), Arm(50, 0.0, 1.0), relative=True) is None
    assert Arm.from_moments(Moments(1, 2.0, 4.0)) is None
    assert Arm.from_rate(0, 0) is None
    rate = Arm.from_rate(30, 120)
    assert rate is not None and (rate.mean, rate.variance, rate.events) == (0.25, 0.1875, 30)


@pytest.mark.parametrize(("alpha", "planned"), [(0.0, 5_000), (1.0, 5_000), (0.05, 0), (0.05, -10)])
def test_parameters_out_of_range_are_refused(alpha: float, planned: float) -> None:
    with pytest.raises(ValueError, match="must"):
        two_sided_half_width(
            Estimate(0.0, 1.0, 100, False), alpha=alpha, tuning_sample_size=planned
        )


def test_one_sided_alpha_must_leave_room_for_doubling() -> None:
    with pytest.raises(ValueError, match="one-sided"):
        one_sided_half_width(Estimate(0.0, 1.0, 100, False), alpha=0.5)


def test_the_sequence_is_wider_than_a_fixed_horizon_interval_and_tightest_near_the_plan() -> None:
    z = NormalDist().inv_cdf(0.975)

    def ratio(units: int) -> float:
        estimate = Estimate(0.0, 4.0 / units, units, False)
        return two_sided_half_width(estimate, tuning_sample_size=5_000) / (
            z * math.sqrt(estimate.variance)
        )

    ratios = {units: ratio(units) for units in (50, 500, 5_000, 50_000, 500_000)}
    assert all(value > 1.0 for value in ratios.values())
    assert ratios[5_000] == min(ratios.values())


def _cumulative_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(streams, looks, per look) values -> n, Σx, Σx² up to each look, per stream."""
    per_look = values.shape[2]
    looks = values.shape[1]
    counts = np.arange(1, looks + 1) * per_look
    return counts, values.sum(axis=2).cumsum(axis=1), (values**2).sum(axis=2).cumsum(axis=1)


def _aa_error_shares(
    seed: int, *, streams: int, looks: int, per_look: int, relative: bool
) -> tuple[float, float]:
    """Share of A/A streams the sequence ever excludes 0 from, and compare's Welch ever rejects.

    Skewed values (gamma, shape 2, like latencies) so the test also covers non-normal data.
    """
    rng = np.random.default_rng(seed)
    shape = (streams, looks, per_look)
    counts, c_sum, c_sq = _cumulative_moments(rng.gamma(2.0, 0.5, shape))
    _, b_sum, b_sq = _cumulative_moments(rng.gamma(2.0, 0.5, shape))
    sequence_errs = naive_errs = 0
    for stream in range(streams):
        sequence_err = naive_err = False
        for look in range(looks):
            n = int(counts[look])
            version = Moments(n, float(c_sum[stream, look]), float(c_sq[stream, look]))
            base = Moments(n, float(b_sum[stream, look]), float(b_sq[stream, look]))
            candidate, baseline = Arm.from_moments(version), Arm.from_moments(base)
            assert candidate is not None and baseline is not None
            interval = confidence_sequence(candidate, baseline, relative=relative)
            assert interval is not None
            sequence_err = sequence_err or not interval.low <= 0.0 <= interval.high
            fixed = welch(version, base)
            assert fixed is not None
            naive_err = naive_err or fixed.significant
        sequence_errs += sequence_err
        naive_errs += naive_err
    return sequence_errs / streams, naive_errs / streams


@pytest.mark.parametrize("seed", [20261206, 15])
@pytest.mark.parametrize("relative", [False, True])
def test_coverage_holds_at_every_look_while_repeated_fixed_tests_do_not(
    seed: int, relative: bool
) -> None:
    streams, alpha = 500, 0.05
    sequence_share, naive_share = _aa_error_shares(
        seed, streams=streams, looks=20, per_look=50, relative=relative
    )
    assert sequence_share <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / streams)
    assert naive_share >= 2 * max(sequence_share, alpha)
