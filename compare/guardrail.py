"""A guardrail's verdict: is the candidate worse than the baseline by more than the margin?

The guard reads this at every look, so it rests on the one-sided always-valid bound of
``compare.sequential`` and not on a fixed-horizon test. The candidate has regressed only when
the whole one-sided interval lies on the worse side of the allowed margin: for a metric where
lower is better (latency, cost), when the lower bound of ``candidate - baseline`` exceeds
+margin; where higher is better (score, positive rate), when the upper bound is below
-margin. Before the minimums are met there is no verdict either way.

With several guardrails the caller splits alpha among them (alpha/m each, Bonferroni) so that the
rollout as a whole keeps its error rate.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from compare.sequential import (
    ALPHA,
    TUNING_SAMPLE_SIZE,
    Arm,
    difference,
    one_sided_half_width,
)


class Direction(enum.Enum):
    """Which way is better for the metric."""

    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


class Verdict(enum.Enum):
    """The guardrail's answer at one look."""

    REGRESSED = "regressed"
    NOT_REGRESSED = "not_regressed"
    NOT_ENOUGH_DATA = "not_enough_data"


@dataclass(frozen=True, slots=True)
class Margin:
    """The allowed worsening: a fraction of the baseline mean (relative) or in metric units."""

    value: float
    relative: bool

    def __post_init__(self) -> None:
        if not (self.value >= 0.0 and math.isfinite(self.value)):
            raise ValueError(f"a margin must be finite and non-negative, not {self.value}")


@dataclass(frozen=True, slots=True)
class Minimums:
    """What each arm needs before any verdict (GrowthBook's defaults).

    ``count``: observations of the metric per arm; ``events``: positives per arm, checked for
    binary metrics only (arms built with ``Arm.from_rate``).
    """

    count: int = 100
    events: int = 25


DEFAULT_MINIMUMS = Minimums()


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """The verdict with what it rests on, for the rollout answer and a rollback's reason.

    ``estimate`` is ``candidate - baseline`` (relative to |baseline mean| with a relative
    margin); ``bound`` the one-sided bound on the better side of it (the lower bound when
    lower is better); ``limit`` the margin signed towards the worse side. None where there
    was not enough data to compute them.
    """

    verdict: Verdict
    estimate: float | None
    bound: float | None
    limit: float
    relative: bool
    alpha: float


def check_guardrail(
    candidate: Arm,
    baseline: Arm,
    *,
    direction: Direction,
    margin: Margin,
    alpha: float = ALPHA,
    tuning_sample_size: float = TUNING_SAMPLE_SIZE,
    minimums: Minimums = DEFAULT_MINIMUMS,
) -> GuardrailCheck:
    """Regressed, not regressed, or not enough data, at level 1 - alpha."""
    worse = 1.0 if direction is Direction.LOWER_IS_BETTER else -1.0
    limit = worse * margin.value + 0.0  # + 0.0: a zero margin is 0, not -0
    estimate = (
        difference(candidate, baseline, relative=margin.relative)
        if _meets(candidate, minimums) and _meets(baseline, minimums)
        else None
    )
    if estimate is None:
        return GuardrailCheck(Verdict.NOT_ENOUGH_DATA, None, None, limit, margin.relative, alpha)
    width = one_sided_half_width(estimate, alpha=alpha, tuning_sample_size=tuning_sample_size)
    bound = estimate.value - worse * width
    regressed = worse * bound > margin.value
    return GuardrailCheck(
        Verdict.REGRESSED if regressed else Verdict.NOT_REGRESSED,
        estimate.value,
        bound,
        limit,
        margin.relative,
        alpha,
    )


def _meets(arm: Arm, minimums: Minimums) -> bool:
    """Enough observations, and enough positives for a binary metric."""
    if arm.count < minimums.count:
        return False
    return arm.events is None or arm.events >= minimums.events
