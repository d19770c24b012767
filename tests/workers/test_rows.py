"""Rows, identities and blocks: what the worker derives from records, without any service."""

from __future__ import annotations

import math
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from tests.workers.helpers import Tenant, analytics, signal, usage
from workers.batch import Batch, BlockId, Record, record_marker
from workers.decode import Poison, decode
from workers.tables import (
    ANALYTICS,
    SIGNALS,
    USAGE,
    Lineage,
    Unstorable,
    signal_version,
    usage_key,
)

TRACE = uuid.UUID("0193a6c2-7c1e-7cc0-9f6b-2a1d3c4e5f60")
HASH = "sha256:" + "d" * 64


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, (0, "", None)),
        ({}, (0, "", None)),
        ({"version": 4}, (4, "", None)),
        ({"version": "v4"}, (4, "", None)),
        ({"version": " 12 "}, (12, "", None)),
        ({"version": 2**32 - 1}, (2**32 - 1, "", None)),
        ({"version": None, "version_hash": None, "trace_id": None}, (0, "", None)),
        ({"version_hash": HASH}, (0, HASH, None)),
        ({"trace_id": str(TRACE)}, (0, "", TRACE)),
        ({"version": "v2", "version_hash": HASH, "trace_id": str(TRACE)}, (2, HASH, TRACE)),
    ],
)
def test_signal_metadata_names_a_version(
    metadata: dict[str, object] | None, expected: tuple[int, str, uuid.UUID | None]
) -> None:
    assert signal_version(metadata) == expected


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"version": 0}, "version"),
        ({"version": 2**32}, "version"),
        ({"version": 2**40}, "version"),
        ({"version": "v4294967296"}, "version"),
        ({"version": 4.0}, "version"),
        ({"version_hash": "sha256:short"}, "version_hash"),
        ({"version_hash": HASH.upper()}, "version_hash"),
    ],
)
def test_a_named_column_that_does_not_fit_is_never_stored_as_none(
    metadata: dict[str, object], key: str
) -> None:
    """Stored as 0, the signal would silently count for no version: the record is poison."""
    with pytest.raises(Unstorable, match=f"^metadata.{key}: must be"):
        signal_version(metadata)
    record = orjson.loads(signal(Tenant(), uuid.uuid4(), "positive").to_bytes())
    record["metadata"] = metadata
    poison = decode(SIGNALS, orjson.dumps(record), Lineage(0, 0))
    assert isinstance(poison, Poison)
    assert poison.reason.startswith(f"schema mismatch: metadata.{key}: must be")


def test_each_kind_has_its_identity() -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    keyed = analytics(tenant, prompt, HASH, latency=1, key="retry-1")
    row = decode(ANALYTICS, keyed.to_bytes(), Lineage(0, 1))
    assert not isinstance(row, Poison)
    assert ANALYTICS.identity(row) == (tenant.project_id, prompt, "retry-1")
    thumbs = signal(tenant, prompt, "negative", metadata={"version": "v3"})
    row = decode(SIGNALS, thumbs.to_bytes(), Lineage(0, 2))
    assert not isinstance(row, Poison)
    assert SIGNALS.identity(row) == (tenant.project_id, prompt, str(thumbs.event_id))
    assert dict(zip(SIGNALS.columns, row, strict=True))["version"] == 3
    span = uuid.uuid4()
    link = usage(tenant, prompt, 2, HASH, TRACE, span_id=span)
    row = decode(USAGE, link.to_bytes(), Lineage(0, 3))
    assert not isinstance(row, Poison)
    assert USAGE.identity(row) == (tenant.project_id, prompt, f"2:{TRACE}:{span}")
    assert usage_key(2, TRACE, None) == f"2:{TRACE}:"
    assert USAGE.insert_columns[-5:] == (
        "kafka_block_first",
        "kafka_block_last",
        "kafka_block_marker",
        "kafka_block_rows",
        "kafka_piece",
    )


@pytest.mark.parametrize(
    ("spec", "change", "reason"),
    [
        (SIGNALS, {"signal_id": -1}, "unstorable: signal_id -1 is outside"),
        (USAGE, {"version": 2**33}, "unstorable: version 8589934592 is outside"),
        (ANALYTICS, {"received_at": "2350-01-01T00:00:00Z"}, "unstorable: received_at 2350"),
        (ANALYTICS, {"latency_ms": 1.7976931348623157e308}, "schema mismatch: latency_ms: must"),
        (ANALYTICS, {"latency_ms": math.nextafter(86_400_000, 1e9)}, "schema mismatch: latency_ms"),
        (ANALYTICS, {"cost_usd": 5e-324}, "schema mismatch: cost_usd: must be 0, or from"),
        (ANALYTICS, {"cost_usd": -1.0}, "schema mismatch: cost_usd: must be 0, or from"),
        (ANALYTICS, {"score": -1e300}, "schema mismatch: score: must be 0, or from"),
        (ANALYTICS, {"score": 1.5e-154}, "schema mismatch: score: must be 0, or from"),
    ],
)
def test_records_that_do_not_fit_the_columns_are_poison(
    spec: object, change: dict[str, object], reason: str
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    records = {
        SIGNALS: signal(tenant, prompt, "positive"),
        USAGE: usage(tenant, prompt, 1, HASH, TRACE),
        ANALYTICS: analytics(tenant, prompt, HASH),
    }
    data = orjson.loads(records[spec].to_bytes())  # type: ignore[index]
    data.update(change)
    result = decode(spec, orjson.dumps(data), Lineage(0, 0))  # type: ignore[arg-type]
    assert isinstance(result, Poison)
    assert result.reason.startswith(reason)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latency_ms", 0.0),
        ("latency_ms", -0.0),
        ("latency_ms", 1e-100),
        ("latency_ms", 86_400_000.0),
        ("cost_usd", 1_000_000.0),
        ("score", -1e9),
        ("score", -1e-100),
    ],
)
def test_a_record_at_the_bounds_becomes_a_row_holding_the_same_double(
    field: str, value: float
) -> None:
    data = orjson.loads(analytics(Tenant(), uuid.uuid4(), HASH).to_bytes())
    data[field] = value
    row = decode(ANALYTICS, orjson.dumps(data), Lineage(0, 0))
    assert not isinstance(row, Poison)
    stored = dict(zip(ANALYTICS.columns, row, strict=True))[field]
    assert struct.pack("<d", stored) == struct.pack("<d", value)  # -0.0 keeps its sign


TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def _record(tp: TopicPartition, offset: int, value: bytes = b"v") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 1, 0, b"k", value, None, 1, 1, ())


def test_a_block_per_partition_covers_every_offset_read_dead_letters_included() -> None:
    batch = Batch(max_rows=100, max_seconds=60)
    batch.add(None, _record(TP1, 7), None)  # dead-lettered: no row, but the range starts here
    batch.add("events", _record(TP1, 8), ["b"])
    batch.add("events", _record(TP0, 3), ["a"])
    batch.add(None, _record(TP0, 4), None)
    batch.add(None, _record(TopicPartition("t", 2), 0), None)
    blocks = batch.blocks()
    assert [(b.tp, b.first, b.last, b.table, b.rows) for b in blocks] == [
        (TP0, 3, 4, "events", [["a"]]),
        (TP1, 7, 8, "events", [["b"]]),
        (TopicPartition("t", 2), 0, 0, None, []),
    ]
    assert [record.offset for record in blocks[0].records] == [3]
    assert batch.rows == 2 and batch.rows_by_table() == {"events": [["a"], ["b"]]}
    assert blocks[0].marker == record_marker(_record(TP0, 3))  # the first record, row or not
    assert blocks[1].marker == record_marker(_record(TP1, 7))
    assert len({b.id.token(202601) for b in blocks}) == 3
    batch.clear()
    assert batch.blocks() == [] and batch.empty


def test_a_fetch_taken_at_once_makes_the_blocks_records_one_by_one_make() -> None:
    one_by_one, at_once = Batch(max_rows=100, max_seconds=60), Batch(max_rows=100, max_seconds=60)
    fetches: list[tuple[TopicPartition, list[tuple[Record, list[Any] | None]]]] = [
        (TP1, [(_record(TP1, 7), None), (_record(TP1, 8), ["b"])]),
        (TP0, [(_record(TP0, 3), ["a"]), (_record(TP0, 4), None), (_record(TP0, 5), ["c"])]),
        (TP1, [(_record(TP1, 9), ["d"])]),
        (TopicPartition("t", 2), [(_record(TopicPartition("t", 2), 0), None)]),
    ]
    for tp, items in fetches:
        for record, row in items:
            one_by_one.add(None if row is None else "events", record, row)
        kept = [(record, row) for record, row in items if row is not None]
        at_once.take(
            tp,
            "events",
            items[0][0],
            items[-1][0],
            [record for record, _row in kept],
            [row for _record, row in kept],
        )
    assert [(b.id, b.table, b.rows, [r.offset for r in b.records]) for b in at_once.blocks()] == [
        (b.id, b.table, b.rows, [r.offset for r in b.records]) for b in one_by_one.blocks()
    ]
    assert at_once.next_offsets == one_by_one.next_offsets
    assert at_once.rows == one_by_one.rows == 4 and at_once.due() is one_by_one.due()


def test_a_block_token_names_offsets_and_first_record_alike() -> None:
    """A recreated topic reuses offsets: only the first record tells its block from the old."""
    first = record_marker(_record(TP0, 3, b"one"))
    token = BlockId(TP0, 3, 4, first).token(202601)
    assert token == BlockId(TP0, 3, 4, record_marker(_record(TP0, 3, b"one"))).token(202601)
    assert token != BlockId(TP0, 3, 4, record_marker(_record(TP0, 3, b"two"))).token(202601)
    assert (
        token != BlockId(TP0, 3, 5, first).token(202601) != BlockId(TP1, 3, 4, first).token(202601)
    )
    assert token != BlockId(TP0, 3, 4, first).token(202602)  # each month is an insert of its own
    later = ConsumerRecord("t", 0, 3, 2, 0, b"k", b"one", None, 1, 1, ())
    assert record_marker(later) != first  # the same bytes sent again, at another time


def test_time_helpers_stamp_milliseconds() -> None:
    record = analytics(Tenant(), uuid.uuid4(), HASH, at=datetime(2026, 1, 1, 0, 0, 0, 123456, UTC))
    assert record.received_at.microsecond == 123000
