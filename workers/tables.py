"""How each topic's records become rows of a ClickHouse table.

Every raw table shares the columns the workers rely on to store each event once
(ARCHITECTURE.md, "Effectively once"): ``project_id``, ``prompt_id`` and ``dedup_key`` (the
event's identity), ``received_at`` (bounds the duplicate lookup), and the Kafka lineage.
``columns`` are what a record maps to; the block lineage columns are appended when a block
is inserted, since a row's block is known only then.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from promptline.topics import EventKind
from schemas.records import AnalyticsRecord, ExposureRecord, SignalRecord, UsageRecord
from schemas.signal_columns import named_columns

BLOCK_COLUMNS = (
    "kafka_block_first",
    "kafka_block_last",
    "kafka_block_marker",
    "kafka_block_rows",
    "kafka_piece",
)
"""Appended to every inserted row: the name of the block it came in (``workers.batch.BlockId``),
how many rows that block held in all, and the insert (piece) that stored it
(``workers/writer.py``)."""

Identity = tuple[uuid.UUID, uuid.UUID, str]
"""(project, prompt, dedup key): events with the same identity are one event."""
Key = tuple[int, int, str]
"""An identity as the workers compare it: the UUIDs as their numbers. ``uuid.UUID`` hashes in
Python, and a batch hashes every identity several times."""

ZERO = timedelta(0)
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
# DateTime64(3) holds 1900-01-01 to 2299-12-31; anything else would fail the whole block.
EARLIEST = datetime(1900, 1, 2, tzinfo=UTC)
LATEST = datetime(2299, 12, 30, tzinfo=UTC)


class Unstorable(ValueError):
    """A record that validates but does not fit its table's columns (dead-lettered)."""


class Lineage(NamedTuple):
    """Where in Kafka a record was read (a tuple: one is made per record read)."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A record type, its destination table and how one record becomes one row."""

    kind: EventKind
    table: str
    record: type[BaseModel]
    columns: tuple[str, ...]
    to_row: Callable[[Any, Lineage], list[Any]]
    # Where the columns the workers read are, found once: a batch reads them for every row.
    _identity: Callable[[list[Any]], Identity] = field(init=False, repr=False, compare=False)
    _key_at: tuple[int, int, int] = field(init=False, repr=False, compare=False)
    _offset_at: int = field(init=False, repr=False, compare=False)
    _received_at: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.columns.index
        key_at = (where("project_id"), where("prompt_id"), where("dedup_key"))
        object.__setattr__(self, "_identity", itemgetter(*key_at))
        object.__setattr__(self, "_key_at", key_at)
        object.__setattr__(self, "_offset_at", where("kafka_offset"))
        object.__setattr__(self, "_received_at", where("received_at"))

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """The columns of an inserted row: the record's, then its block's lineage."""
        return self.columns + BLOCK_COLUMNS

    def identity(self, row: list[Any]) -> Identity:
        """The event's identity in ``row``."""
        return self._identity(row)

    def key(self, row: list[Any]) -> Key:
        """The event's identity in ``row``, as a :data:`Key`."""
        project, prompt, key = self._key_at
        return (row[project].int, row[prompt].int, row[key])

    def offset(self, row: list[Any]) -> int:
        """The Kafka offset the event in ``row`` was read at."""
        value: int = row[self._offset_at]
        return value

    def received_at(self, row: list[Any]) -> datetime:
        """When the edge accepted the event in ``row``."""
        value: datetime = row[self._received_at]
        return value

    def month(self, row: list[Any]) -> int:
        """The raw table partition ``row`` goes to: ``toYYYYMM(received_at)``, in UTC."""
        moment: datetime = row[self._received_at]
        if moment.tzinfo is None:
            return moment.year * 100 + moment.month
        if moment.utcoffset() != ZERO:
            moment = moment.astimezone(UTC)
        return moment.year * 100 + moment.month


def _checked_time(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= LATEST:
        raise Unstorable(f"received_at {value.isoformat()} is outside DateTime64's range")
    return aware


def _checked_int(name: str, value: int, upper: int) -> int:
    if not 0 <= value <= upper:
        raise Unstorable(f"{name} {value} is outside 0..{upper}")
    return value


def _analytics_row(record: AnalyticsRecord, lineage: Lineage) -> list[Any]:
    return [
        record.event_id,
        _checked_time(record.received_at),
        record.org_id,
        record.project_id,
        record.prompt_id,
        record.version_hash,
        record.latency_ms,
        record.cost_usd,
        record.score,
        record.idempotency_key or str(record.event_id),
        lineage.partition,
        lineage.offset,
    ]


ANALYTICS = TableSpec(
    kind=EventKind.ANALYTICS,
    table="analytics_events",
    record=AnalyticsRecord,
    columns=(
        "event_id",
        "received_at",
        "org_id",
        "project_id",
        "prompt_id",
        "version_hash",
        "latency_ms",
        "cost_usd",
        "score",
        "dedup_key",
        "kafka_partition",
        "kafka_offset",
    ),
    to_row=_analytics_row,
)


def signal_version(metadata: Mapping[str, Any] | None) -> tuple[int, str, uuid.UUID | None]:
    """(version number, content hash, trace id) a signal's metadata names; 0, "" and None if not.

    Signals (seed 000) name only the prompt; a client ties one to a version by naming the
    version (``4``, ``"4"``, ``"v4"``), its content hash, or a trace a usage link ties to one.
    The edge reads them with the same rules (``schemas.signal_columns``) and refuses what
    the columns cannot hold, so a value that does not fit is never stored as "none": it is
    :class:`Unstorable`.
    """
    try:
        return named_columns(metadata)
    except ValueError as error:
        raise Unstorable(f"metadata.{error}") from None


def _signal_row(record: SignalRecord, lineage: Lineage) -> list[Any]:
    number, digest, trace_id = signal_version(record.metadata)
    return [
        record.event_id,
        _checked_time(record.received_at),
        record.org_id,
        record.project_id,
        record.prompt_id,
        _checked_int("signal_id", record.signal_id, UINT64_MAX),
        record.value,
        number,
        digest,
        trace_id,
        orjson.dumps(record.metadata or {}).decode(),
        record.idempotency_key or str(record.event_id),
        lineage.partition,
        lineage.offset,
    ]


SIGNALS = TableSpec(
    kind=EventKind.SIGNAL,
    table="signal_events",
    record=SignalRecord,
    columns=(
        "event_id",
        "received_at",
        "org_id",
        "project_id",
        "prompt_id",
        "signal_id",
        "value",
        "version",
        "version_hash",
        "trace_id",
        "metadata",
        "dedup_key",
        "kafka_partition",
        "kafka_offset",
    ),
    to_row=_signal_row,
)


def usage_key(version: int, trace_id: uuid.UUID, span_id: uuid.UUID | None) -> str:
    """The natural key of a usage link: the same (version, trace, span) is one link."""
    return f"{version}:{trace_id}:{span_id or ''}"


def _usage_row(record: UsageRecord, lineage: Lineage) -> list[Any]:
    version = _checked_int("version", record.version, UINT32_MAX)
    return [
        record.event_id,
        _checked_time(record.received_at),
        record.org_id,
        record.project_id,
        record.prompt_id,
        record.prompt_name,
        version,
        record.version_hash,
        record.trace_id,
        record.span_id,
        usage_key(version, record.trace_id, record.span_id),
        lineage.partition,
        lineage.offset,
    ]


USAGE = TableSpec(
    kind=EventKind.USAGE,
    table="usage_links",
    record=UsageRecord,
    columns=(
        "event_id",
        "received_at",
        "org_id",
        "project_id",
        "prompt_id",
        "prompt_name",
        "version",
        "version_hash",
        "trace_id",
        "span_id",
        "dedup_key",
        "kafka_partition",
        "kafka_offset",
    ),
    to_row=_usage_row,
)

NEVER_DEPLOYED = uuid.UUID(int=0)
"""``exposure_events.deployment_id`` of a prompt that was never deployed (a key column)."""

_EXPOSURE_COLUMNS = (
    *(name for name in ExposureRecord.model_fields if name not in ("v", "kind", "idempotency_key")),
    "dedup_key",
    "kafka_partition",
    "kafka_offset",
)
"""The record's fields (less ``v`` and ``kind``; the key is the dedup key), and the lineage."""


def _exposure_row(record: ExposureRecord, lineage: Lineage) -> list[Any]:
    derived = {
        "received_at": _checked_time(record.received_at),
        "deployment_id": record.deployment_id or NEVER_DEPLOYED,
        "dedup_key": record.idempotency_key or str(record.event_id),
        "kafka_partition": lineage.partition,
        "kafka_offset": lineage.offset,
    }
    return [
        derived[column] if column in derived else getattr(record, column)
        for column in _EXPOSURE_COLUMNS
    ]


EXPOSURES = TableSpec(
    kind=EventKind.EXPOSURE,
    table="exposure_events",
    record=ExposureRecord,
    columns=_EXPOSURE_COLUMNS,
    to_row=_exposure_row,
)

TABLES: dict[EventKind, TableSpec] = {
    spec.kind: spec for spec in (ANALYTICS, SIGNALS, USAGE, EXPOSURES)
}
RAW_TABLES: tuple[str, ...] = tuple(spec.table for spec in TABLES.values())
