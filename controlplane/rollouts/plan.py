"""The ``guard`` of a guarded deploy: what to ramp, how fast, and what must not get worse.

``POST /v1/prompts/:id/deploy`` with ``{"guard": {...}}`` instead of ``traffic`` starts a
rollout of ``candidate`` against ``baseline`` (default: the stable version in force). The
guard process then moves it along ``ramp`` (percent of traffic to the candidate), a step
at a time once ``min_step_seconds`` have passed and every guardrail has its minimums with
no regression, and rolls back at once on a regression or a broken split. Stored as JSON in
the rollout row (``Plan.to_json``), so a rollout keeps the plan it was started with.
"""

from __future__ import annotations

import enum
import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

DEFAULT_RAMP = (5, 25, 50, 100)
DEFAULT_STEP_SECONDS = 3_600
DEFAULT_DEADLINE_SECONDS = 7 * 24 * 3_600
MAX_GUARDRAILS = 8
MAX_STEPS = 20


class Metric(enum.StrEnum):
    """What a guardrail watches, with the direction in which it is better."""

    LATENCY_MS = "latency_ms"
    COST_USD = "cost_usd"
    SCORE = "score"
    POSITIVE_RATE = "positive_rate"

    @property
    def lower_is_better(self) -> bool:
        """Latency and cost are better lower; score and positive rate higher."""
        return self in (Metric.LATENCY_MS, Metric.COST_USD)


class OnDeadline(enum.StrEnum):
    """What the guard does when the deadline passes before the rollout could finish."""

    HOLD = "hold"
    ROLLBACK = "rollback"


def _version_number(value: Any) -> Any:
    """``4`` or ``"v4"`` (as traffic splits spell versions) to 4; anything else is left for
    pydantic to refuse."""
    if isinstance(value, str) and value[:1] in ("v", "V") and value[1:].isdigit():
        return int(value[1:])
    return value


def _ramp(value: list[int]) -> list[int]:
    if any(later <= earlier for earlier, later in itertools.pairwise(value)):
        raise ValueError("must increase step by step, e.g. [5, 25, 50, 100]")
    if value[-1] != 100:
        raise ValueError("must end at 100 (the candidate takes all traffic when done)")
    if len(value) < 2:
        raise ValueError("needs a step below 100 first: at 100 there is no baseline to compare")
    return value


class GuardrailIn(BaseModel):
    """One metric the candidate must not worsen by more than ``margin``.

    ``margin`` is a fraction of the baseline's mean with ``relative`` (0.1: at most 10%
    worse), else in the metric's own unit (0.02 positive rate: two points).
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    metric: Annotated[Metric, Field(strict=False)]
    margin: Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False)] = 0.0
    relative: bool = True
    direction: Literal["lower_is_better", "higher_is_better"] | None = None
    """Default: the metric's own (lower latency and cost, higher score and positive rate)."""

    @property
    def lower_is_better(self) -> bool:
        """The direction given, else the metric's."""
        if self.direction is None:
            return self.metric.lower_is_better
        return self.direction == "lower_is_better"


Version = Annotated[
    int, BeforeValidator(lambda value: _version_number(value)), Field(ge=1, le=2_147_483_647)
]
"""A version number, ``4`` or ``"v4"``."""


class GuardIn(BaseModel):
    """The ``guard`` object of a guarded deploy (docs/rollouts.md, "Guarded deploys")."""

    model_config = ConfigDict(strict=True, extra="forbid")

    candidate: Version
    baseline: Version | None = None
    ramp: Annotated[
        list[Annotated[int, Field(ge=1, le=100)]],
        Field(min_length=1, max_length=MAX_STEPS),
        AfterValidator(_ramp),
    ] = Field(default_factory=lambda: list(DEFAULT_RAMP))
    min_step_seconds: Annotated[int, Field(ge=1, le=30 * 24 * 3_600)] = DEFAULT_STEP_SECONDS
    min_units: Annotated[int, Field(ge=1, le=10_000_000)] = 100
    """Distinct units exposed to each arm before any decision."""
    min_events: Annotated[int, Field(ge=2, le=10_000_000)] = 100
    """Observations of each guardrail's metric per arm before it counts."""
    deadline: Annotated[datetime | None, Field(strict=False)] = None
    """When to stop waiting for enough data (default: a week after the start)."""
    on_deadline: Annotated[OnDeadline | None, Field(strict=False)] = None
    """Default: the ``guard_on_deadline`` setting (hold)."""
    guardrails: Annotated[list[GuardrailIn], Field(min_length=1, max_length=MAX_GUARDRAILS)]

    @model_validator(mode="after")
    def _one_limit_per_metric(self) -> GuardIn:
        """Each metric at most once: two limits on one metric would split alpha for nothing."""
        metrics = [guardrail.metric for guardrail in self.guardrails]
        if len(set(metrics)) != len(metrics):
            raise ValueError("guardrails: each metric at most once")
        return self
