"""The records the edge produces to Kafka and the workers consume.

Each record is one compact JSON object with a schema version ``v``, so a worker can
tell a record it understands from one it must dead-letter. See ``docs/topics.md``.
Analytics numbers and the signal metadata keys copied into columns carry the domains the
edge enforces (``schemas.domains``, ``schemas.signal_columns``), so a record outside them,
produced by an older edge or by hand, is dead-lettered by the worker rather than refused
by ClickHouse (a usage ``version`` beyond UInt32 is caught by ``workers/tables.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_serializer,
)

from schemas.domains import CostUsd, LatencyMs, Score
from schemas.exposures import (
    CONTENT_HASH_PATTERN,
    MAX_RULE_LENGTH,
    MAX_UNIT_ID_LENGTH,
    ExposureSource,
)
from schemas.signal_columns import check_named_columns
from schemas.usage import MAX_VERSION_NUMBER

RECORD_SCHEMA_VERSION = 1


class RecordBase(BaseModel):
    """Fields every event record carries: who sent it, when it arrived, and its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    event_id: UUID
    received_at: datetime
    org_id: UUID
    project_id: UUID
    idempotency_key: str | None = None

    @field_serializer("received_at")
    def _millisecond_utc(self, value: datetime) -> str:
        # The documented wire form: UTC, milliseconds, "Z" (docs/topics.md).
        return wire_time(value)

    def to_bytes(self) -> bytes:
        """The compact JSON encoding that goes on the wire."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


class AnalyticsRecord(RecordBase):
    """One analytics event (seed 004) as accepted by the edge."""

    kind: Literal["analytics"] = "analytics"
    prompt_id: UUID
    version_hash: str
    latency_ms: LatencyMs | None = None
    cost_usd: CostUsd | None = None
    score: Score | None = None


def wire_time(value: datetime) -> str:
    """A time in the records' documented wire form: UTC, milliseconds, "Z"."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def analytics_record_bytes(
    event_id: UUID,
    received_at: str,
    org_id: UUID,
    project_id: UUID,
    fields: dict[str, Any],
) -> bytes:
    """The bytes ``AnalyticsRecord(...).to_bytes()`` gives, without building the model.

    The edge's hot path: ``fields`` come from a body already validated by
    ``AnalyticsEventIn``, whose fields carry the record's own types and domains, so the
    model would check nothing new; building and dumping it cost more than the rest of the
    event. ``received_at`` is already in :func:`wire_time` form. A test holds this to the
    model's encoding.
    """
    record: dict[str, Any] = {
        "v": RECORD_SCHEMA_VERSION,
        "event_id": event_id,
        "received_at": received_at,
        "org_id": org_id,
        "project_id": project_id,
    }
    key = fields.get("idempotency_key")
    if key is not None:
        record["idempotency_key"] = key
    record["kind"] = "analytics"
    record["prompt_id"] = fields["prompt_id"]
    record["version_hash"] = fields["version_hash"]
    for name in ("latency_ms", "cost_usd", "score"):
        value = fields.get(name)
        if value is not None:
            record[name] = value
    return orjson.dumps(record)


class SignalRecord(RecordBase):
    """One feedback signal (seed 000): a thumbs up or down on a prompt's output.

    ``signal_id`` is the integer id the edge answered with; ``metadata`` is the client's
    own JSON object, kept as given.
    """

    kind: Literal["signal"] = "signal"
    signal_id: int
    prompt_id: UUID
    value: Literal["positive", "negative"]
    metadata: Annotated[dict[str, Any], AfterValidator(check_named_columns)] | None = None


class UsageRecord(RecordBase):
    """A usage link (seed 002): a trace (and span) used this version of a prompt.

    Idempotent by (prompt, version, trace, span): the same link sent twice is one link.
    """

    kind: Literal["usage"] = "usage"
    prompt_id: UUID
    prompt_name: str
    version: int
    version_hash: str
    trace_id: UUID
    span_id: UUID | None = None


class ExposureRecord(RecordBase):
    """One resolve answer given to one unit: the version served, and what decided it.

    ``received_at`` is when resolve answered (a client's ``resolved_at`` for one it reports);
    ``deployment_id`` is absent when the prompt was never deployed (``rule`` ``latest``);
    ``by_split`` says the deployment's weighted split chose the version (not a targeting
    rule), which is what the sample-ratio check counts; ``unit_id`` is the keyed hash of the
    user id, or the user id as given (``promptline.units``).
    """

    kind: Literal["exposure"] = "exposure"
    prompt_id: UUID
    version: Annotated[StrictInt, Field(ge=1, le=MAX_VERSION_NUMBER)]
    version_hash: Annotated[str, StringConstraints(pattern=CONTENT_HASH_PATTERN)]
    deployment_id: UUID | None = None
    rule: Annotated[str, StringConstraints(min_length=1, max_length=MAX_RULE_LENGTH)]
    by_split: StrictBool
    unit_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_UNIT_ID_LENGTH)]
    source: ExposureSource


EventRecord = AnalyticsRecord | SignalRecord | UsageRecord | ExposureRecord
