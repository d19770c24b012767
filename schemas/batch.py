"""The batch route's body: ``{"events": [{"type": ..., ...}, ...]}``.

Each event carries the fields of its own route's body, plus ``type`` and an optional
``idempotency_key``; a signal names its prompt in ``prompt_id`` (the path parameter of
its own route). An exposure has no route of its own: a client that resolves on its own
side reports what it served (``schemas.exposures``). The batch contract is ours, so
unknown fields are refused in every event, analytics included. Events are validated one
by one, so one bad event does not sink the others: the envelope itself only has to be an
object with a list.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analytics import AnalyticsEventIn
from schemas.exposures import ExposureEventIn
from schemas.idempotency import IdempotencyKey
from schemas.signals import SignalIn
from schemas.usage import PromptReference, UsageIn

EVENT_TYPES = ("signal", "usage", "analytics", "exposure")


class BatchIn(BaseModel):
    """The envelope: a non-empty list of events (each checked on its own)."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(min_length=1)


class SignalEventIn(SignalIn):
    """A signal in a batch: seed 000's body plus the prompt it is about."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["signal"]
    prompt_id: PromptReference
    idempotency_key: IdempotencyKey | None = None


class UsageEventIn(UsageIn):
    """A usage link in a batch.

    ``idempotency_key`` is accepted like on every event, but the link's natural key
    (prompt, version, trace, span) is what deduplicates it, whoever sends it.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["usage"]
    idempotency_key: IdempotencyKey | None = None


class AnalyticsBatchEventIn(AnalyticsEventIn):
    """An analytics event in a batch (its ``idempotency_key`` comes with seed 004's body)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["analytics"]


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "signal": SignalEventIn,
    "usage": UsageEventIn,
    "analytics": AnalyticsBatchEventIn,
    "exposure": ExposureEventIn,
}
