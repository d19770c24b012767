"""The guard's decision played over simulated rollouts (``tests.guard.simulation``), two seeds each.

- a candidate 10% slower is rolled back, naming latency; a healthy one reaches 100%;
- over 500 A/A rollouts of at least 20 looks each, the guard rolls back (guardrails and the
  sample-ratio check together) within alpha plus two binomial standard errors, while acting on
  compare's fixed-horizon tests at every look, on the same data, rolls back at least twice as
  often (and at least 2 alpha): why the guard uses a confidence sequence;
- a tenth of one arm's exposures lost is caught by the sample-ratio check.
"""

from __future__ import annotations

import math

import pytest

from compare.sequential import ALPHA
from controlplane.rollouts.plan import GuardIn, GuardrailIn, Metric
from guard.decide import Action
from tests.guard.simulation import Behaviour, Scenario, naive_rollback, play

SEEDS = [20261207, 15]
LOOK_SECONDS = 300
STEP_SECONDS = 8 * LOOK_SECONDS  # eight looks a step: 24 looks over the ramp's three steps
ROLLOUTS = 500


def _plan(latency_margin: float, others: float) -> GuardIn:
    """The default ramp (5, 25, 50, 100), three guardrails, default minimums (100 a side)."""
    return GuardIn(
        candidate=2,
        baseline=1,
        min_step_seconds=STEP_SECONDS,
        guardrails=[
            GuardrailIn(metric=Metric.LATENCY_MS, margin=latency_margin),
            GuardrailIn(metric=Metric.SCORE, margin=others),
            GuardrailIn(metric=Metric.POSITIVE_RATE, margin=others, relative=False),
        ],
    )


@pytest.mark.parametrize("margin", [0.0, 0.02])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_candidate_ten_percent_slower_is_rolled_back(seed: int, margin: float) -> None:
    scenario = Scenario(candidate=Behaviour().slower(1.10), look_seconds=LOOK_SECONDS)
    outcome = play(_plan(margin, 0.02), scenario, seed)
    assert outcome.action is Action.ROLLBACK, outcome.decision.reason
    assert outcome.decision.reason.startswith("latency_ms regressed: candidate - baseline = +")
    assert not outcome.decision.sample_ratio_failed
    latency = outcome.decision.report["guardrails"][0]
    assert latency["metric"] == "latency_ms" and latency["verdict"] == "regressed"
    assert latency["interval"]["lower"] > margin
    assert 0.0 < latency["estimate"] < 0.25
    assert outcome.steps[-1] < 100


@pytest.mark.parametrize("seed", SEEDS)
def test_a_healthy_candidate_reaches_a_hundred_percent(seed: int) -> None:
    plan = _plan(0.02, 0.02)
    outcome = play(plan, Scenario(look_seconds=LOOK_SECONDS), seed)
    assert outcome.action is Action.COMPLETE, outcome.decision.reason
    # Every step but the last ran; completing is the move to the last, 100%.
    assert outcome.steps == (5, 25, 50) and plan.ramp[-1] == 100
    assert outcome.decision.reason.startswith("no guardrail regressed: latency_ms ")
    verdicts = [guardrail["verdict"] for guardrail in outcome.decision.report["guardrails"]]
    assert verdicts == ["not_regressed"] * 3
    assert outcome.looks >= 3 * STEP_SECONDS // LOOK_SECONDS  # more if a step waited for data


@pytest.mark.parametrize("seed", SEEDS)
def test_aa_rollouts_roll_back_within_alpha_while_naive_repeated_tests_do_not(seed: int) -> None:
    """Margins 0: the candidate sits exactly on the boundary of "no worse", the hardest case."""
    plan = _plan(0.0, 0.0)
    scenario = Scenario(look_seconds=LOOK_SECONDS)
    outcomes = [
        play(plan, scenario, (seed, rollout), naive=naive_rollback) for rollout in range(ROLLOUTS)
    ]
    rolled_back = [outcome for outcome in outcomes if outcome.action is Action.ROLLBACK]
    finished = [outcome for outcome in outcomes if outcome.action is not Action.ROLLBACK]
    assert {outcome.action for outcome in finished} <= {Action.COMPLETE}
    assert min(outcome.looks for outcome in finished) >= 20

    share = len(rolled_back) / ROLLOUTS
    naive_share = sum(outcome.naive_rolled_back for outcome in outcomes) / ROLLOUTS
    bound = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / ROLLOUTS)
    ratio_failures = sum(outcome.decision.sample_ratio_failed for outcome in rolled_back)
    figures = (
        f"seed {seed}: {ROLLOUTS} A/A rollouts, guard rolled back {share:.3f} "
        f"({ratio_failures} by the sample-ratio check), bound {bound:.4f}; "
        f"naive repeated fixed-horizon check rolled back {naive_share:.3f}"
    )
    print(figures)
    assert share <= bound, figures
    assert naive_share >= 2 * max(share, ALPHA), figures


@pytest.mark.parametrize("seed", SEEDS)
def test_a_tenth_of_one_arms_exposures_lost_is_caught(seed: int) -> None:
    scenario = Scenario(
        candidate=Behaviour(exposures_lost=0.1), units_per_look=3_000, look_seconds=LOOK_SECONDS
    )
    outcome = play(_plan(0.02, 0.02), scenario, seed)
    assert outcome.action is Action.ROLLBACK, outcome.decision.reason
    assert outcome.decision.sample_ratio_failed
    assert outcome.decision.reason.startswith("sample ratio mismatch: units ")
    ratio = outcome.decision.report["sample_ratio"]
    assert ratio["mismatch"] and ratio["p_value"] < ratio["threshold"] == 0.001
    assert ratio["versions"] == ["v1", "v2"]
    # Fewer candidate units than its weight asks for: the lost exposures.
    candidate_share = ratio["units"][1] / sum(ratio["units"])
    assert candidate_share < ratio["weights"][1] / 100
    verdicts = {guardrail["verdict"] for guardrail in outcome.decision.report["guardrails"]}
    assert "regressed" not in verdicts
