"""How each topic's records become rows of a ClickHouse table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from promptline.topics import EventKind
from schemas.records import AnalyticsRecord


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where in Kafka a record was read."""

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


def _analytics_row(record: AnalyticsRecord, lineage: Lineage) -> list[Any]:
    return [
        record.event_id,
        record.received_at,
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

TABLES: dict[EventKind, TableSpec] = {spec.kind: spec for spec in (ANALYTICS,)}
