"""The edge's answers as pydantic models, for the API document only.

The routes build their answers as dicts; these describe them in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.errors import ErrorBody


class _Answer(BaseModel):
    """Exactly the fields the handler writes: a field added there and not here fails a test."""

    model_config = ConfigDict(extra="forbid")


class SignalData(_Answer):
    """The signal as stored: its integer id, value and time of receipt (UTC, milliseconds)."""

    id: int
    value: Literal["positive", "negative"]
    created_at: str


class SignalAccepted(_Answer):
    """Seed 000's answer once Kafka has the signal."""

    data: SignalData


class UsageRecorded(_Answer):
    """Seed 002's answer: always ``recorded`` (the call is idempotent)."""

    status: Literal["recorded"]


class BatchError(ErrorBody):
    """An event's error; ``retry_after`` (seconds) when worth retrying."""

    retry_after: int | None = None


class BatchResult(_Answer):
    """One event's outcome: its own route's status and ids, or its error."""

    index: int
    type: str | None
    status: int
    event_id: str | None = None
    id: int | None = None
    error: BatchError | None = None


class BatchAnswer(_Answer):
    """One result per event, in order."""

    results: list[BatchResult]
    accepted: int
    rejected: int
