"""One look at a guarded rollout: roll back, take the next step, hold, or wait.

At every look, in this order:

1. every guardrail is judged by its one-sided always-valid confidence sequence
   (``compare.guardrail``) at alpha split evenly among the guardrails (Bonferroni); one
   whose interval lies wholly on the worse side of its margin rolls the candidate back;
2. the sample-ratio check of the step in force (distinct units its split decided, against
   its weights) uses the sequential Dirichlet-multinomial test, so looking every few
   seconds keeps its false alarms under ``SAMPLE_RATIO_THRESHOLD`` per step; a mismatch
   rolls back too (a broken split makes every comparison unreliable);
3. past the deadline a step still short of data or of its minimum time holds where it is
   (or rolls back, if so configured), and says what it lacked: it never ships without the
   evidence (a step that has it all goes on as in 4);
4. once every guardrail has its minimums with no regression, each arm its minimum units,
   and the step its minimum time, the next step; the step to 100% completes the rollout;
5. otherwise it waits, and says for what.

The error budget: the guardrails share ``plan_alpha - steps * SAMPLE_RATIO_THRESHOLD``, so
the chance that a candidate no worse than its margins is rolled back stays under alpha
however long the rollout runs and however often the guard looks.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from compare.guardrail import Direction, GuardrailCheck, Margin, Minimums, Verdict, check_guardrail
from compare.sample_ratio import THRESHOLD as SAMPLE_RATIO_THRESHOLD
from compare.sample_ratio import sequential_sample_ratio
from compare.sequential import ALPHA, TUNING_SAMPLE_SIZE, Arm
from controlplane.rollouts.plan import GuardIn, GuardrailIn, Metric, OnDeadline
from controlplane.times import iso

POSITIVES_MINIMUM = 25
"""Positives per arm before a positive-rate guardrail counts (GrowthBook's default)."""


class Action(enum.StrEnum):
    """What the guard does after a look."""

    WAIT = "wait"
    ADVANCE = "advance"
    COMPLETE = "complete"
    ROLLBACK = "rollback"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class ArmData:
    """What is known of one arm since the rollout started."""

    units: int
    metrics: Mapping[Metric, Arm | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Look:
    """Everything one look rests on.

    ``split_units`` are the distinct units the step in force decided by its weighted split,
    per version, and ``split_weights`` that split's weights (same versions).
    """

    now: datetime
    candidate: ArmData
    baseline: ArmData
    split_units: Mapping[int, int]
    split_weights: Mapping[int, int]
    sample_ratio_p: float = 1.0
    """The running minimum of the step's sequential p-value before this look."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where the rollout is: its step, since when, and its deadline."""

    step: int
    step_started_at: datetime
    deadline: datetime
    on_deadline: OnDeadline


@dataclass(frozen=True, slots=True)
class Decision:
    """The action, the reason in words, and the report ``GET .../rollout`` shows."""

    action: Action
    reason: str
    report: dict[str, Any]
    sample_ratio_failed: bool = False


def guardrail_alpha(plan: GuardIn, alpha: float = ALPHA) -> float:
    """Each guardrail's share of the error budget (see the module docstring)."""
    left = alpha - len(plan.ramp) * SAMPLE_RATIO_THRESHOLD
    return max(left, alpha / 2) / len(plan.guardrails)


def decide(
    plan: GuardIn,
    position: Position,
    look: Look,
    *,
    alpha: float = ALPHA,
    tuning_sample_size: float = TUNING_SAMPLE_SIZE,
) -> Decision:
    """The guard's decision at one look (module docstring)."""
    each = guardrail_alpha(plan, alpha)
    minimums = Minimums(count=plan.min_events, events=min(POSITIVES_MINIMUM, plan.min_events))
    checks = [
        (
            guardrail,
            _check(guardrail, look, each, tuning_sample_size, minimums),
        )
        for guardrail in plan.guardrails
    ]
    p_value, ratio = _sample_ratio(look)
    report = _report(plan, position, look, checks, p_value, ratio)

    def decision(action: Action, reason: str, *, mismatch: bool = False) -> Decision:
        report["decision"] = {"action": action.value, "reason": reason}
        return Decision(action, reason, report, mismatch)

    for guardrail, check in checks:
        if check is not None and check.verdict is Verdict.REGRESSED:
            return decision(Action.ROLLBACK, _regression(guardrail, check))
    if p_value < SAMPLE_RATIO_THRESHOLD:
        return decision(
            Action.ROLLBACK,
            f"sample ratio mismatch: units {ratio} against weights "
            f"{_ratio(look.split_weights)} (sequential p = {p_value:.2g} < "
            f"{SAMPLE_RATIO_THRESHOLD})",
            mismatch=True,
        )
    lacking = _lacking(plan, look, checks)
    in_step = (look.now - position.step_started_at).total_seconds()
    if look.now >= position.deadline and (lacking or in_step < plan.min_step_seconds):
        why = "; ".join(lacking) if lacking else "the step's minimum time had not passed"
        if position.on_deadline is OnDeadline.ROLLBACK:
            return decision(Action.ROLLBACK, f"deadline passed without enough evidence: {why}")
        return decision(Action.HOLD, f"deadline passed; holding at step {position.step + 1}: {why}")
    if lacking:
        return decision(Action.WAIT, "waiting for " + "; ".join(lacking))
    if in_step < plan.min_step_seconds:
        left = math.ceil(plan.min_step_seconds - in_step)
        return decision(
            Action.WAIT, f"no regression so far; the step's minimum time ends in {left} s"
        )
    summary = "no guardrail regressed: " + ", ".join(
        f"{guardrail.metric.value} {_bound_text(guardrail, check)}"
        for guardrail, check in checks
        if check is not None
    )
    last = position.step + 1 == len(plan.ramp) - 1
    return decision(Action.COMPLETE if last else Action.ADVANCE, summary)


def _check(
    guardrail: GuardrailIn, look: Look, alpha: float, tuning: float, minimums: Minimums
) -> GuardrailCheck | None:
    candidate = look.candidate.metrics.get(guardrail.metric)
    baseline = look.baseline.metrics.get(guardrail.metric)
    direction = (
        Direction.LOWER_IS_BETTER if guardrail.lower_is_better else Direction.HIGHER_IS_BETTER
    )
    margin = Margin(guardrail.margin, guardrail.relative)
    if candidate is None or baseline is None:
        return GuardrailCheck(
            Verdict.NOT_ENOUGH_DATA, None, None, _limit(guardrail), margin.relative, alpha
        )
    return check_guardrail(
        candidate,
        baseline,
        direction=direction,
        margin=margin,
        alpha=alpha,
        tuning_sample_size=tuning,
        minimums=minimums,
    )


def _limit(guardrail: GuardrailIn) -> float:
    return guardrail.margin if guardrail.lower_is_better else 0.0 - guardrail.margin


def _sample_ratio(look: Look) -> tuple[float, str]:
    versions = [number for number, weight in sorted(look.split_weights.items()) if weight > 0]
    counts = [look.split_units.get(number, 0) for number in versions]
    text = _ratio({number: look.split_units.get(number, 0) for number in versions})
    if len(versions) < 2:
        return look.sample_ratio_p, text
    weights = [float(look.split_weights[number]) for number in versions]
    return sequential_sample_ratio(counts, weights, previous=look.sample_ratio_p), text


def _ratio(values: Mapping[int, int]) -> str:
    return "/".join(f"{values[number]} (v{number})" for number in sorted(values))


def _lacking(
    plan: GuardIn, look: Look, checks: list[tuple[GuardrailIn, GuardrailCheck | None]]
) -> list[str]:
    lacking = []
    for name, arm in (("candidate", look.candidate), ("baseline", look.baseline)):
        if arm.units < plan.min_units:
            lacking.append(f"{plan.min_units} units on the {name} (has {arm.units})")
    for guardrail, check in checks:
        if check is None or check.verdict is Verdict.NOT_ENOUGH_DATA:
            arms = (
                look.candidate.metrics.get(guardrail.metric),
                look.baseline.metrics.get(guardrail.metric),
            )
            counts = [arm.count if arm is not None else 0 for arm in arms]
            events = [arm.events if arm is not None else None for arm in arms]
            if min(counts) < plan.min_events:
                lacking.append(
                    f"{plan.min_events} {guardrail.metric.value} observations per arm "
                    f"(candidate {counts[0]}, baseline {counts[1]})"
                )
            elif None not in events:  # enough observations; a binary metric lacks positives
                lacking.append(
                    f"{min(POSITIVES_MINIMUM, plan.min_events)} {guardrail.metric.value} "
                    f"positives per arm (candidate {events[0]}, baseline {events[1]})"
                )
            else:  # enough observations; a relative margin lacks a non-zero baseline mean
                lacking.append(f"a {guardrail.metric.value} baseline mean other than 0")
    return lacking


def _number(value: float, guardrail: GuardrailIn) -> str:
    if guardrail.relative:
        return f"{value * 100:+.2f}%"
    return f"{value:+.4g}"


def _bound_text(guardrail: GuardrailIn, check: GuardrailCheck) -> str:
    if check.estimate is None or check.bound is None:
        return "(not enough data)"
    side = "lower" if guardrail.lower_is_better else "upper"
    return (
        f"{_number(check.estimate, guardrail)} ({side} bound {_number(check.bound, guardrail)}, "
        f"allowed {_number(check.limit, guardrail)})"
    )


def _regression(guardrail: GuardrailIn, check: GuardrailCheck) -> str:
    assert check.estimate is not None and check.bound is not None
    confidence = 100 * (1 - check.alpha)
    interval = (
        f"[{_number(check.bound, guardrail)}, +inf)"
        if guardrail.lower_is_better
        else f"(-inf, {_number(check.bound, guardrail)}]"
    )
    return (
        f"{guardrail.metric.value} regressed: candidate - baseline = "
        f"{_number(check.estimate, guardrail)}, always-valid {confidence:.2f}% interval "
        f"{interval} lies wholly beyond the allowed {_number(check.limit, guardrail)}"
    )


def _report(
    plan: GuardIn,
    position: Position,
    look: Look,
    checks: list[tuple[GuardrailIn, GuardrailCheck | None]],
    p_value: float,
    ratio: str,
) -> dict[str, Any]:
    guardrails = []
    for guardrail, check in checks:
        lower_better = guardrail.lower_is_better
        bound = check.bound if check is not None else None
        guardrails.append(
            {
                "metric": guardrail.metric.value,
                "direction": "lower_is_better" if lower_better else "higher_is_better",
                "margin": guardrail.margin,
                "relative": guardrail.relative,
                "limit": _limit(guardrail),
                "verdict": check.verdict.value
                if check is not None
                else Verdict.NOT_ENOUGH_DATA.value,
                "estimate": _finite(check.estimate if check is not None else None),
                "interval": {
                    "lower": _finite(bound) if lower_better else None,
                    "upper": None if lower_better else _finite(bound),
                },
                "alpha": check.alpha if check is not None else None,
                "candidate": _arm_json(look.candidate.metrics.get(guardrail.metric)),
                "baseline": _arm_json(look.baseline.metrics.get(guardrail.metric)),
            }
        )
    versions = sorted(look.split_weights)
    return {
        "step": position.step + 1,
        "steps": len(plan.ramp),
        "percent": plan.ramp[position.step],
        "time_in_step_seconds": max(0, int((look.now - position.step_started_at).total_seconds())),
        "evaluated_at": iso(look.now),
        "units": {"candidate": look.candidate.units, "baseline": look.baseline.units},
        "guardrails": guardrails,
        "sample_ratio": {
            "test": "sequential Dirichlet-multinomial (always valid)",
            "versions": [f"v{number}" for number in versions],
            "units": [look.split_units.get(number, 0) for number in versions],
            "weights": [look.split_weights[number] for number in versions],
            "p_value": p_value,
            "threshold": SAMPLE_RATIO_THRESHOLD,
            "mismatch": p_value < SAMPLE_RATIO_THRESHOLD,
        },
    }


def _arm_json(arm: Arm | None) -> dict[str, Any] | None:
    if arm is None:
        return None
    return {"count": arm.count, "mean": _finite(arm.mean)}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
