"""Guardrail verdicts: a worse candidate is caught, a healthy one is not, minimums hold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compare.guardrail import Direction, Margin, Minimums, Verdict, check_guardrail
from compare.sequential import Arm, difference, one_sided_half_width
from compare.stats import Moments


def _latency_arm(values: np.ndarray) -> Arm:
    arm = Arm.from_moments(Moments(len(values), float(values.sum()), float((values**2).sum())))
    assert arm is not None
    return arm


def _latency_verdicts(
    seed: int, slowdown: float, *, looks: int = 20, per_look: int = 500
) -> list[Verdict]:
    """A rollout's verdicts look by look: gamma latencies, the candidate `slowdown` times slower."""
    rng = np.random.default_rng(seed)
    candidate = rng.gamma(2.0, 0.5 * slowdown, looks * per_look)
    baseline = rng.gamma(2.0, 0.5, looks * per_look)
    verdicts: list[Verdict] = []
    for look in range(1, looks + 1):
        seen = look * per_look
        verdicts.append(
            check_guardrail(
                _latency_arm(candidate[:seen]),
                _latency_arm(baseline[:seen]),
                direction=Direction.LOWER_IS_BETTER,
                margin=Margin(0.02, relative=True),
                minimums=Minimums(count=1_000),
            ).verdict
        )
    return verdicts


@pytest.mark.parametrize("seed", [7, 2026])
def test_a_candidate_ten_percent_slower_is_flagged_and_a_healthy_one_is_not(seed: int) -> None:
    worse = _latency_verdicts(seed, 1.10)
    assert worse[0] is Verdict.NOT_ENOUGH_DATA  # 500 a side, under the minimum of 1,000
    assert worse[-1] is Verdict.REGRESSED
    healthy = _latency_verdicts(seed, 1.0)
    assert Verdict.REGRESSED not in healthy
    assert healthy[-1] is Verdict.NOT_REGRESSED


@pytest.mark.parametrize("seed", [7, 2026])
def test_a_positive_rate_ten_percent_lower_is_flagged_with_an_absolute_margin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    units = 20_000

    def verdict(candidate_rate: float) -> Verdict:
        candidate = Arm.from_rate(int(rng.binomial(units, candidate_rate)), units)
        baseline = Arm.from_rate(int(rng.binomial(units, 0.5)), units)
        assert candidate is not None and baseline is not None
        return check_guardrail(
            candidate,
            baseline,
            direction=Direction.HIGHER_IS_BETTER,
            margin=Margin(0.01, relative=False),
        ).verdict

    assert verdict(0.45) is Verdict.REGRESSED
    assert verdict(0.5) is Verdict.NOT_REGRESSED


def test_the_bound_sits_on_the_better_side_and_is_compared_with_the_signed_margin() -> None:
    candidate, baseline = Arm(5_000, 1.10, 0.5), Arm(5_000, 1.0, 0.5)
    estimate = difference(candidate, baseline)
    assert estimate is not None
    width = one_sided_half_width(estimate)
    slower = check_guardrail(
        candidate, baseline, direction=Direction.LOWER_IS_BETTER, margin=Margin(0.05, False)
    )
    assert slower.estimate == pytest.approx(0.1)
    assert slower.bound == pytest.approx(0.1 - width)
    assert slower.limit == 0.05
    assert slower.verdict is (Verdict.REGRESSED if 0.1 - width > 0.05 else Verdict.NOT_REGRESSED)
    # The same data, read as a metric where higher is better, is an improvement.
    better = check_guardrail(
        candidate, baseline, direction=Direction.HIGHER_IS_BETTER, margin=Margin(0.05, False)
    )
    assert better.bound == pytest.approx(0.1 + width)
    assert (better.limit, better.verdict) == (-0.05, Verdict.NOT_REGRESSED)


def test_mirrored_metrics_get_mirrored_verdicts() -> None:
    candidate, baseline = Arm(3_000, 10.4, 4.0), Arm(3_000, 10.0, 4.0)
    mirrored = (Arm(3_000, -10.4, 4.0), Arm(3_000, -10.0, 4.0))
    for margin in (0.0, 0.1, 0.2, 0.3):
        low = check_guardrail(
            candidate, baseline, direction=Direction.LOWER_IS_BETTER, margin=Margin(margin, False)
        )
        high = check_guardrail(
            *mirrored, direction=Direction.HIGHER_IS_BETTER, margin=Margin(margin, False)
        )
        assert low.verdict is high.verdict
        assert low.bound is not None and high.bound is not None
        assert low.bound == pytest.approx(-high.bound)
    # Tightening the margin to zero flags what a wide margin lets through.
    strict = check_guardrail(
        candidate, baseline, direction=Direction.LOWER_IS_BETTER, margin=Margin(0.0, False)
    )
    loose = check_guardrail(
        candidate, baseline, direction=Direction.LOWER_IS_BETTER, margin=Margin(0.3, False)
    )
    assert (strict.verdict, loose.verdict) == (Verdict.REGRESSED, Verdict.NOT_REGRESSED)


def test_no_verdict_before_the_minimums() -> None:
    few = check_guardrail(
        Arm(99, 50.0, 1.0),
        Arm(5_000, 1.0, 1.0),
        direction=Direction.LOWER_IS_BETTER,
        margin=Margin(0.0, False),
    )
    assert (few.verdict, few.estimate, few.bound) == (Verdict.NOT_ENOUGH_DATA, None, None)
    rare = Arm.from_rate(24, 10_000)
    common = Arm.from_rate(2_000, 10_000)
    assert rare is not None and common is not None
    events = check_guardrail(
        rare, common, direction=Direction.HIGHER_IS_BETTER, margin=Margin(0.0, False)
    )
    assert events.verdict is Verdict.NOT_ENOUGH_DATA
    zero_baseline = check_guardrail(
        Arm(500, 1.0, 1.0),
        Arm(500, 0.0, 1.0),
        direction=Direction.LOWER_IS_BETTER,
        margin=Margin(0.1, True),
    )
    assert zero_baseline.verdict is Verdict.NOT_ENOUGH_DATA


@pytest.mark.parametrize("value", [-0.1, math.inf, math.nan])
def test_a_margin_must_be_finite_and_non_negative(value: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        Margin(value, relative=True)


@pytest.mark.parametrize("seed", [11, 12])
def test_a_and_a_rollouts_are_rarely_called_regressed(seed: int) -> None:
    """The one-sided bound keeps its alpha at every look: 500 A/A rollouts, 20 looks each."""
    rng = np.random.default_rng(seed)
    streams, looks, per_look, alpha = 500, 20, 50, 0.05
    values = rng.gamma(2.0, 0.5, (2, streams, looks, per_look))
    sums = values.sum(axis=3).cumsum(axis=2)
    squares = (values**2).sum(axis=3).cumsum(axis=2)
    regressed = 0
    for stream in range(streams):
        for look in range(looks):
            n = (look + 1) * per_look
            candidate, baseline = (
                Arm.from_moments(
                    Moments(n, float(sums[arm, stream, look]), float(squares[arm, stream, look]))
                )
                for arm in (0, 1)
            )
            assert candidate is not None and baseline is not None
            check = check_guardrail(
                candidate, baseline, direction=Direction.LOWER_IS_BETTER, margin=Margin(0.0, False)
            )
            if check.verdict is Verdict.REGRESSED:
                regressed += 1
                break
    assert regressed / streams <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / streams)
