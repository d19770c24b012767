"""The guard's decision at one look: wait, advance, complete, hold, roll back, and the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from compare.guardrail import Direction, Margin, Minimums, check_guardrail
from compare.sample_ratio import sequential_sample_ratio
from compare.sequential import Arm
from controlplane.rollouts.plan import GuardIn, GuardrailIn, Metric, OnDeadline
from guard.decide import Action, ArmData, Decision, Look, Position, decide, guardrail_alpha

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DEADLINE = START + timedelta(days=7)
PLAN = GuardIn(
    candidate=2,
    baseline=1,
    ramp=[5, 25, 50, 100],
    min_step_seconds=3_600,
    min_units=100,
    min_events=100,
    guardrails=[
        GuardrailIn(metric=Metric.LATENCY_MS, margin=0.05),
        GuardrailIn(metric=Metric.POSITIVE_RATE, margin=0.02, relative=False),
    ],
)
EACH_ALPHA = (0.05 - 4 * 0.001) / 2  # alpha less the sample-ratio checks' share, per guardrail


def _arm(units: int, latency_ms: float, positives: int, signals: int) -> ArmData:
    """Latency with a standard deviation of 400 ms; ``positives`` of ``signals`` positive."""
    return ArmData(
        units,
        {
            Metric.LATENCY_MS: Arm(units, latency_ms, 400.0**2),
            Metric.POSITIVE_RATE: Arm.from_rate(positives, signals),
        },
    )


CANDIDATE = _arm(2_000, 800.0, 600, 1_000)
BASELINE = _arm(38_000, 805.0, 11_400, 19_000)


def _decide(
    *,
    seconds: int,
    candidate: ArmData = CANDIDATE,
    baseline: ArmData = BASELINE,
    step: int = 0,
    split: tuple[int, int] = (19_000, 1_000),
    running_p: float = 1.0,
    now: datetime | None = None,
    on_deadline: OnDeadline = OnDeadline.HOLD,
) -> Decision:
    """A look ``seconds`` into the step ``step`` (0-based); ``split`` is (baseline, candidate)."""
    percent = PLAN.ramp[step]
    look = Look(
        now=now or START + timedelta(seconds=seconds),
        candidate=candidate,
        baseline=baseline,
        split_units={1: split[0], 2: split[1]},
        split_weights={1: 100 - percent, 2: percent},
        sample_ratio_p=running_p,
    )
    return decide(PLAN, Position(step, START, DEADLINE, on_deadline), look)


def test_each_guardrail_gets_alpha_less_the_sample_ratio_share_split_evenly() -> None:
    assert guardrail_alpha(PLAN) == pytest.approx(EACH_ALPHA, rel=1e-12)
    long_ramp = PLAN.model_copy(update={"ramp": list(range(5, 101, 5))})  # 20 steps
    # 20 sample-ratio checks would take 0.02; at least half of alpha stays for the guardrails.
    assert guardrail_alpha(long_ramp) == pytest.approx(0.03 / 2, rel=1e-12)


def test_waits_and_lists_what_is_lacking() -> None:
    candidate = ArmData(40, {Metric.LATENCY_MS: Arm(40, 790.0, 160_000.0)})
    decision = _decide(seconds=7_200, candidate=candidate, split=(760, 40))
    assert decision.action is Action.WAIT
    assert decision.reason == (
        "waiting for 100 units on the candidate (has 40); "
        "100 latency_ms observations per arm (candidate 40, baseline 38000); "
        "100 positive_rate observations per arm (candidate 0, baseline 19000)"
    )
    verdicts = [guardrail["verdict"] for guardrail in decision.report["guardrails"]]
    assert verdicts == ["not_enough_data", "not_enough_data"]
    assert decision.report["guardrails"][0]["estimate"] is None
    assert decision.report["decision"] == {"action": "wait", "reason": decision.reason}


def test_waits_for_positives_and_for_a_relative_scale_and_says_so() -> None:
    few_positives = _decide(seconds=7_200, candidate=_arm(2_000, 800.0, 20, 150))
    assert few_positives.action is Action.WAIT
    assert few_positives.reason == (
        "waiting for 25 positive_rate positives per arm (candidate 20, baseline 11400)"
    )
    free = ArmData(38_000, {**BASELINE.metrics, Metric.LATENCY_MS: Arm(38_000, 0.0, 1.0)})
    no_scale = _decide(seconds=7_200, baseline=free)
    assert no_scale.action is Action.WAIT
    assert no_scale.reason == "waiting for a latency_ms baseline mean other than 0"


def test_waits_for_the_steps_minimum_time_even_when_all_is_well() -> None:
    decision = _decide(seconds=1_800)
    assert decision.action is Action.WAIT
    assert decision.reason == "no regression so far; the step's minimum time ends in 1800 s"
    verdicts = [guardrail["verdict"] for guardrail in decision.report["guardrails"]]
    assert verdicts == ["not_regressed", "not_regressed"]


def test_advances_once_the_steps_minimum_time_has_passed() -> None:
    decision = _decide(seconds=3_600)
    assert decision.action is Action.ADVANCE
    assert decision.reason.startswith("no guardrail regressed: latency_ms -0.62% (lower bound -"), (
        decision.reason
    )
    assert "allowed +5.00%), positive_rate +0 (upper bound +" in decision.reason
    assert decision.reason.endswith("allowed -0.02)")
    assert not decision.sample_ratio_failed


@pytest.mark.parametrize(("step", "action"), [(1, Action.ADVANCE), (2, Action.COMPLETE)])
def test_the_step_before_a_hundred_percent_completes(step: int, action: Action) -> None:
    percent = PLAN.ramp[step]
    split = (20_000 * (100 - percent) // 100, 20_000 * percent // 100)
    decision = _decide(seconds=3_600, step=step, split=split)
    assert decision.action is action
    assert (decision.report["step"], decision.report["percent"]) == (step + 1, percent)


def test_holds_at_the_deadline_without_enough_data_and_says_why() -> None:
    candidate = _arm(60, 800.0, 30, 60)
    decision = _decide(seconds=0, candidate=candidate, split=(1_140, 60), now=DEADLINE)
    assert decision.action is Action.HOLD
    assert decision.reason == (
        "deadline passed; holding at step 1: 100 units on the candidate (has 60); "
        "100 latency_ms observations per arm (candidate 60, baseline 38000); "
        "100 positive_rate observations per arm (candidate 60, baseline 19000)"
    )
    rolled_back = _decide(
        seconds=0,
        candidate=candidate,
        split=(1_140, 60),
        now=DEADLINE,
        on_deadline=OnDeadline.ROLLBACK,
    )
    assert rolled_back.action is Action.ROLLBACK and not rolled_back.sample_ratio_failed
    assert rolled_back.reason.startswith(
        "deadline passed without enough evidence: 100 units on the candidate (has 60); "
    )
    # A minute earlier the same data only waits.
    before = _decide(
        seconds=0, candidate=candidate, split=(1_140, 60), now=DEADLINE - timedelta(minutes=1)
    )
    assert before.action is Action.WAIT


def test_at_the_deadline_a_ready_step_goes_on_and_an_unready_one_holds() -> None:
    ready = _decide(seconds=0, step=2, split=(10_000, 10_000), now=DEADLINE)
    assert ready.action is Action.COMPLETE, ready.reason
    late = Position(2, DEADLINE - timedelta(minutes=10), DEADLINE, OnDeadline.HOLD)
    look = Look(DEADLINE, CANDIDATE, BASELINE, {1: 10_000, 2: 10_000}, {1: 50, 2: 50})
    held = decide(PLAN, late, look)
    assert held.action is Action.HOLD
    assert (
        held.reason == "deadline passed; holding at step 3: the step's minimum time had not passed"
    )


def test_a_lower_positive_rate_is_rolled_back_with_an_absolute_margin() -> None:
    candidate = _arm(10_000, 800.0, 4_000, 8_000)  # 50% against the baseline's 60%
    decision = _decide(seconds=60, candidate=candidate)
    assert decision.action is Action.ROLLBACK
    assert decision.reason.startswith(
        "positive_rate regressed: candidate - baseline = -0.1, always-valid 97.70% interval "
        "(-inf, -0.0"
    ), decision.reason
    assert decision.reason.endswith("] lies wholly beyond the allowed -0.02")
    rate = decision.report["guardrails"][1]
    assert rate["verdict"] == "regressed" and rate["direction"] == "higher_is_better"
    assert rate["estimate"] == pytest.approx(-0.1, abs=1e-12)
    assert rate["interval"]["lower"] is None and rate["interval"]["upper"] < -0.02


def test_a_regression_rolls_back_even_past_the_deadline() -> None:
    slower = _arm(2_000, 1_000.0, 600, 1_000)
    decision = _decide(seconds=0, candidate=slower, now=DEADLINE + timedelta(hours=1))
    assert decision.action is Action.ROLLBACK
    assert decision.reason.startswith("latency_ms regressed: candidate - baseline = +24.22%")


def test_a_broken_split_is_rolled_back() -> None:
    split = (19_300, 700)  # 3.5% of units where the split sends 5%
    decision = _decide(seconds=60, split=split)
    p_value = sequential_sample_ratio([19_300, 700], [95.0, 5.0])
    assert p_value < 1e-6
    assert decision.action is Action.ROLLBACK and decision.sample_ratio_failed
    assert decision.reason == (
        f"sample ratio mismatch: units 19300 (v1)/700 (v2) against weights 95 (v1)/5 (v2) "
        f"(sequential p = {p_value:.2g} < 0.001)"
    )
    assert decision.report["sample_ratio"]["p_value"] == p_value
    assert decision.report["sample_ratio"]["mismatch"] is True


def test_the_sample_ratio_p_value_is_a_running_minimum() -> None:
    decision = _decide(seconds=60, split=(19_000, 1_000), running_p=0.2)
    assert sequential_sample_ratio([19_000, 1_000], [95.0, 5.0]) == 1.0
    assert decision.report["sample_ratio"]["p_value"] == 0.2
    below = _decide(seconds=60, split=(19_000, 1_000), running_p=0.0005)
    assert below.action is Action.ROLLBACK and below.sample_ratio_failed


def test_the_report_holds_what_the_rollout_answer_shows() -> None:
    decision = _decide(seconds=1_234)
    report = decision.report
    latency_check = check_guardrail(
        CANDIDATE.metrics[Metric.LATENCY_MS] or Arm(0, 0.0, 0.0),
        BASELINE.metrics[Metric.LATENCY_MS] or Arm(0, 0.0, 0.0),
        direction=Direction.LOWER_IS_BETTER,
        margin=Margin(0.05, relative=True),
        alpha=EACH_ALPHA,
        minimums=Minimums(count=100, events=25),
    )
    assert latency_check.bound is not None
    assert report["step"] == 1 and report["steps"] == 4 and report["percent"] == 5
    assert report["time_in_step_seconds"] == 1_234
    assert report["evaluated_at"] == "2026-12-01T09:20:34Z"
    assert report["units"] == {"candidate": 2_000, "baseline": 38_000}
    latency, rate = report["guardrails"]
    assert latency == {
        "metric": "latency_ms",
        "direction": "lower_is_better",
        "margin": 0.05,
        "relative": True,
        "limit": 0.05,
        "verdict": "not_regressed",
        "estimate": pytest.approx((800.0 - 805.0) / 805.0, rel=1e-12),
        "interval": {"lower": pytest.approx(latency_check.bound, rel=1e-12), "upper": None},
        "alpha": pytest.approx(EACH_ALPHA, rel=1e-12),
        "candidate": {"count": 2_000, "mean": 800.0},
        "baseline": {"count": 38_000, "mean": 805.0},
    }
    assert latency["interval"]["lower"] < latency["estimate"] < 0.05
    assert (rate["metric"], rate["margin"], rate["relative"], rate["limit"]) == (
        "positive_rate",
        0.02,
        False,
        -0.02,
    )
    assert rate["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert rate["interval"]["lower"] is None and 0.0 < rate["interval"]["upper"] < 0.1
    assert rate["candidate"] == {"count": 1_000, "mean": 0.6}
    assert report["sample_ratio"] == {
        "test": "sequential Dirichlet-multinomial (always valid)",
        "versions": ["v1", "v2"],
        "units": [19_000, 1_000],
        "weights": [95, 5],
        "p_value": 1.0,
        "threshold": 0.001,
        "mismatch": False,
    }
    assert report["decision"]["action"] == "wait"
