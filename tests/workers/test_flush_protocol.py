"""The flush protocol with fakes: fence, look up, insert, commit, and what a zombie does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaTimeoutError
from aiokafka.structs import ConsumerRecord

from tests.workers.helpers import Tenant, analytics
from workers.batch import Batch, BlockId, record_marker
from workers.coordinator import WarehouseWorker
from workers.dead_letters import DeadLetters
from workers.dedup import DuplicateFinder
from workers.partition_reader import PartitionReader
from workers.recovery import BlockRecovery
from workers.sink import ClickHouseSink, Refused
from workers.tables import ANALYTICS, Identity

TOPIC = "p.analytics.v1"
TP = TopicPartition(TOPIC, 0)
HASH = "sha256:" + "e" * 64


class FakeConsumer:
    """Hands out one batch of records, then stops the worker; records commits and seeks."""

    def __init__(self, records: list[ConsumerRecord[bytes, bytes]], stop: asyncio.Event) -> None:
        self._records = records
        self._stop = stop
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail_commit: int | None = None
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.log: list[str] = []

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        self._stop.set()
        records, self._records = self._records, []
        return {TP: records} if records else {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append("commit")
        if self.fail_commit == len(self.commits):
            self.fail_commit = None
            raise CommitFailedError("the group rebalanced")
        self.commits.append(offsets)

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


class FakeSink:
    """Answers lookups with ``stored`` and records inserts; refuses those of ``refuse``."""

    def __init__(
        self, log: list[str], stored: Sequence[Identity] = (), refuse: float | None = None
    ) -> None:
        self._log = log
        self._stored = list(stored)
        self._refuse = refuse
        self.writes: list[tuple[str, list[list[Any]], str]] = []

    async def write(
        self, table: str, columns: Sequence[str], rows: list[list[Any]], token: str
    ) -> None:
        self._log.append("insert")
        latency = columns.index("latency_ms")
        if self._refuse is not None and any(row[latency] == self._refuse for row in rows):
            raise Refused("DataError: the driver cannot encode it")
        self.writes.append((table, rows, token))

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: Any = None
    ) -> list[tuple[Any, ...]]:
        if "FROM system.tables" in sql:
            return []  # no key table: lookups read the raw tables
        if sql.startswith("SELECT count()"):
            self._log.append("count")  # what a refused insert stored: nothing, here
            return [(0,)]
        self._log.append("lookup")
        return [tuple(identity) for identity in self._stored]


class FakeDeadLetters:
    """Records what is parked, and when deliveries are awaited; fails them if told to."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self._log = log
        self._fail = fail
        self.parked: list[tuple[int, str]] = []

    async def park(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        self.parked.append((record.offset, reason))

    async def delivered(self) -> None:
        self._log.append("deliver")
        if self._fail:
            raise KafkaTimeoutError("the dead-letter topic is not answering")


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", value, None, 1, len(value), ())


async def _run(
    records: list[ConsumerRecord[bytes, bytes]],
    stored: Sequence[Identity] = (),
    fail_commit: int | None = None,
    refuse: float | None = None,
    fail_delivery: bool = False,
) -> tuple[WarehouseWorker, FakeConsumer, FakeSink, FakeDeadLetters]:
    stop = asyncio.Event()
    consumer = FakeConsumer(records, stop)
    consumer.fail_commit = fail_commit
    sink = FakeSink(consumer.log, stored, refuse)
    dead_letters = FakeDeadLetters(consumer.log, fail_delivery)
    finder = DuplicateFinder(cast(ClickHouseSink, sink), window=None)
    worker = WarehouseWorker(
        cast(AIOKafkaConsumer, consumer),
        cast(ClickHouseSink, sink),
        cast(DeadLetters, dead_letters),
        {TOPIC: ANALYTICS},
        Batch(max_rows=1_000, max_seconds=60),
        finder,
        BlockRecovery(
            cast(ClickHouseSink, sink),
            cast(PartitionReader, None),
            finder,
            cast(DeadLetters, dead_letters),
        ),
    )
    await worker.run(stop)
    return worker, consumer, sink, dead_letters


async def test_fence_then_lookup_then_insert_then_commit() -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    first = analytics(tenant, prompt, HASH, latency=1, key="same")
    again = first.model_copy(update={"event_id": uuid.uuid4()})
    seen = analytics(tenant, prompt, HASH, latency=3, key="stored-before")
    fresh = analytics(tenant, prompt, HASH, latency=4)
    records = [
        _record(10, first.to_bytes()),
        _record(11, again.to_bytes()),
        _record(12, seen.to_bytes()),
        _record(13, fresh.to_bytes()),
    ]
    worker, consumer, sink, _dead = await _run(
        records, stored=[(tenant.project_id, prompt, "stored-before")]
    )
    assert consumer.log == ["commit", "deliver", "lookup", "insert", "deliver", "commit"]
    assert consumer.commits == [{TP: 10}, {TP: 14}]
    [(table, rows, token)] = sink.writes
    marker = record_marker(records[0])
    piece = rows[0][-1]
    assert piece != 0 and token == BlockId(TP, 10, 13, marker).token(
        ANALYTICS.month(rows[0]), piece
    )
    assert table == "analytics_events"
    keys = [ANALYTICS.identity(row)[2] for row in rows]
    assert keys == ["same", str(fresh.event_id)]
    assert [row[-5:] for row in rows] == [[10, 13, marker, 2, piece], [10, 13, marker, 2, piece]]
    assert worker.stats.duplicates_dropped == 2 and worker.stats.rows_written == 2


async def test_a_worker_that_lost_its_partitions_inserts_nothing() -> None:
    records = [_record(5, analytics(Tenant(), uuid.uuid4(), HASH).to_bytes())]
    worker, consumer, sink, _dead = await _run(records, fail_commit=0)
    assert sink.writes == [] and consumer.commits == []
    assert consumer.seeks == [(TP, 5)]  # read again if the partition stays
    assert worker.stats.batches_dropped == 1


async def test_a_lost_commit_after_the_insert_reads_the_block_again() -> None:
    records = [_record(5, analytics(Tenant(), uuid.uuid4(), HASH).to_bytes())]
    worker, consumer, sink, _dead = await _run(records, fail_commit=1)
    assert len(sink.writes) == 1 and consumer.commits == [{TP: 5}]
    assert consumer.seeks == [(TP, 5)]
    assert worker.stats.batches_dropped == 1


async def test_the_records_clickhouse_refuses_are_dead_lettered_and_the_rest_goes_on() -> None:
    """A month's insert is refused: split, the record at fault is alone and dead-lettered,
    its neighbour stored, and the partition moves on."""
    tenant, prompt = Tenant(), uuid.uuid4()
    january, february = datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    records = [
        _record(20, analytics(tenant, prompt, HASH, latency=1, at=january).to_bytes()),
        _record(21, analytics(tenant, prompt, HASH, latency=666, at=february).to_bytes()),
        _record(22, b"{not json"),
        _record(23, analytics(tenant, prompt, HASH, latency=3, at=february).to_bytes()),
    ]
    worker, consumer, sink, dead = await _run(records, refuse=666)
    assert [[row[6] for row in rows] for _table, rows, _token in sink.writes] == [[1.0], [3.0]]
    assert dead.parked[0][0] == 22 and dead.parked[0][1].startswith("undecodable JSON")
    assert dead.parked[1:] == [
        (21, "refused by ClickHouse: DataError: the driver cannot encode it")
    ]
    assert consumer.log == [
        *("commit", "deliver", "lookup", "insert"),  # fence, dead letters, lookup, January
        *("insert", "count"),  # February refused; nothing of it stored to undo
        *("insert", "count", "insert"),  # its halves: 666 refused alone, 3 stored
        *("deliver", "commit"),
    ]
    assert consumer.commits == [{TP: 20}, {TP: 24}]  # the partition moves on
    assert worker.stats.rows_written == 2 and worker.stats.dead_lettered == 2


async def test_dead_letters_not_delivered_keep_the_batch_uninserted() -> None:
    records = [
        _record(5, b"{not json"),
        _record(6, analytics(Tenant(), uuid.uuid4(), HASH).to_bytes()),
    ]
    worker, consumer, sink, _dead = await _run(records, fail_delivery=True)
    assert sink.writes == [] and consumer.commits == [{TP: 5}]  # the fence only
    assert consumer.seeks == [(TP, 5)] and worker.stats.batches_dropped == 1
