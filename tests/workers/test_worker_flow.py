"""A worker in this process against the real broker and ClickHouse: each event stored once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import (
    SimulatedCrash,
    Tenant,
    analytics,
    command,
    committed_offsets,
    in_process_worker,
    millis,
    produce,
    query,
    signal,
    usage,
    wait_until,
)
from workers.sink import ClickHouseSink, Refused

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64


async def _all_committed(settings: Settings, expected: dict[str, int]) -> bool:
    totals = await committed_offsets(settings, list(EventKind))
    return all(totals.get(topic, 0) >= count for topic, count in expected.items())


async def test_each_event_is_stored_once_whatever_way_it_comes_twice(migrated: Settings) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    day_ago = datetime.now(UTC) - timedelta(days=1)
    first = analytics(tenant, prompt, HASH_A, latency=10, cost=0.5, score=1, key="k1", at=day_ago)
    retried = first.model_copy(update={"event_id": uuid.uuid4(), "received_at": millis()})
    plain = analytics(tenant, prompt, HASH_B, latency=30)
    thumbs = signal(tenant, prompt, "positive", metadata={"version": "v2"}, key="s1")
    trace = uuid.uuid4()
    link = usage(tenant, prompt, 2, HASH_B, trace)
    link_again = link.model_copy(update={"event_id": uuid.uuid4()})
    other_project = analytics(Tenant(), prompt, HASH_A, latency=99, key="k1")
    async with in_process_worker(migrated):
        # The first copies land in one batch...
        await produce(migrated, [first, plain, thumbs, link, other_project])
        expected = {
            topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS): 3,
            topic_name(migrated.kafka_topic_prefix, EventKind.SIGNAL): 1,
            topic_name(migrated.kafka_topic_prefix, EventKind.USAGE): 1,
        }
        await wait_until(lambda: _all_committed(migrated, expected), "first batch committed")
        # ...the copies in later ones: same key a day later, same bytes twice, same link.
        await produce(migrated, [retried, plain, thumbs, link_again])
        await produce(migrated, [plain, thumbs.model_copy(update={"event_id": uuid.uuid4()})])
        expected = {
            topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS): 6,
            topic_name(migrated.kafka_topic_prefix, EventKind.SIGNAL): 3,
            topic_name(migrated.kafka_topic_prefix, EventKind.USAGE): 2,
        }
        await wait_until(lambda: _all_committed(migrated, expected), "copies committed")

    rows = await query(
        migrated,
        "SELECT project_id, dedup_key, latency_ms, received_at FROM analytics_events"
        " ORDER BY latency_ms",
    )
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (tenant.project_id, "k1", 10.0),
        (tenant.project_id, str(plain.event_id), 30.0),
        (other_project.project_id, "k1", 99.0),
    ]
    assert rows[0][3].replace(tzinfo=UTC) == first.received_at  # the first copy is kept
    hourly = await query(
        migrated,
        "SELECT version_hash, sum(events), sum(latency_sum), sum(cost_sum), sum(score_count)"
        " FROM analytics_hourly WHERE project_id = {p:UUID} GROUP BY version_hash"
        " ORDER BY version_hash",
        p=tenant.project_id,
    )
    assert hourly == [(HASH_A, 1, 10.0, 0.5, 1), (HASH_B, 1, 30.0, 0.0, 0)]
    signals = await query(migrated, "SELECT version, value, dedup_key, metadata FROM signal_events")
    assert signals == [(2, "positive", "s1", '{"version":"v2"}')]
    assert await query(
        migrated, "SELECT sum(positive), sum(negative) FROM signals_hourly WHERE version = 2"
    ) == [(1, 0)]
    links = await query(migrated, "SELECT version, trace_id, dedup_key FROM usage_links")
    assert links == [(2, trace, f"2:{trace}:")]
    assert await query(migrated, "SELECT sum(links), uniqExactMerge(traces) FROM usage_hourly") == [
        (1, 1)
    ]


class _DiesBeforeCommitting(AIOKafkaConsumer):  # type: ignore[misc]
    """Dies right after its first insert: the fence commit passes, the offset commit does not."""

    commits = 0

    async def commit(self, offsets: Any = None) -> None:
        self.commits += 1
        if self.commits == 2:
            raise SimulatedCrash
        await super().commit(offsets)


def _events(count: int) -> list[Any]:
    tenant, prompt = Tenant(), uuid.uuid4()
    return [analytics(tenant, prompt, HASH_A, latency=n, cost=1) for n in range(1, count + 1)]


async def _counts(settings: Settings) -> tuple[Any, ...]:
    raw = await query(settings, "SELECT count(), sum(latency_ms) FROM analytics_events")
    hourly = await query(settings, "SELECT sum(events), sum(latency_sum) FROM analytics_hourly")
    return raw[0] + hourly[0]


class _DiesWhenRefused(ClickHouseSink):
    """Dies as soon as ClickHouse refuses an insert: before undoing what it stored."""

    async def write(self, table: str, columns: Any, rows: list[list[Any]], token: str) -> None:
        try:
            await super().write(table, columns, rows, token)
        except Refused:
            raise SimulatedCrash from None


async def test_next_owner_completes_the_block_a_dead_worker_left(migrated: Settings) -> None:
    """Inserted into the table but not the view, never committed, worker gone: nothing lost.

    The table stores the block, then the view's constraint makes ClickHouse refuse the
    insert, and the worker dies before it can undo or split anything.
    """
    await command(migrated, "ALTER TABLE analytics_hourly ADD CONSTRAINT down CHECK events = 0")
    async with in_process_worker(migrated, sink_type=_DiesWhenRefused) as (first, task, _stop):
        await produce(migrated, _events(30))
        with pytest.raises(SimulatedCrash):
            await task
        assert (first.stats.dead_lettered, first.stats.rows_written) == (0, 0)
    await command(migrated, "ALTER TABLE analytics_hourly DROP CONSTRAINT down")
    assert await _counts(migrated) == (30, 465.0, 0, 0.0)
    async with in_process_worker(migrated) as (worker, _task, _stop):
        await wait_until(lambda: worker.stats.blocks_recovered == 1, "the recovery")
        assert worker.stats.rows_written == 0
    assert await _counts(migrated) == (30, 465.0, 30, 465.0)


async def test_a_block_inserted_but_not_committed_is_not_counted_twice(
    migrated: Settings,
) -> None:
    async with in_process_worker(migrated, _DiesBeforeCommitting) as (_worker, task, _stop):
        await produce(migrated, _events(30))
        with pytest.raises(SimulatedCrash):
            await task
    assert await _counts(migrated) == (30, 465.0, 30, 465.0)
    async with in_process_worker(migrated) as (worker, _task, _stop):
        await wait_until(lambda: worker.stats.blocks_recovered == 1, "the recovery")
        await produce(migrated, _events(5))
        await wait_until(lambda: worker.stats.rows_written == 5, "later events")
    assert await _counts(migrated) == (35, 480.0, 35, 480.0)


class _DiesAtItsSecondBlock(AIOKafkaConsumer):  # type: ignore[misc]
    """Commits its first block, inserts its second, and dies before committing that."""

    commits = 0

    async def commit(self, offsets: Any = None) -> None:
        self.commits += 1
        if self.commits == 4:  # fence, commit, fence, then this
            raise SimulatedCrash
        await super().commit(offsets)


async def test_a_block_that_starts_inside_a_producer_batch_is_recovered(
    migrated: Settings,
) -> None:
    """The local broker reports a partition's end as its last batch's start plus one, so
    the end cannot tell recovery whether a record follows the committed offset."""
    settings = migrated.model_copy(update={"worker_batch_max_rows": 3})
    await produce(settings, _events(7))  # one producer batch, offsets 0..6
    async with in_process_worker(settings, _DiesAtItsSecondBlock) as (_worker, task, _stop):
        with pytest.raises(SimulatedCrash):
            await task
    assert await _counts(settings) == (6, 21.0, 6, 21.0)  # blocks 0..2 and 3..5
    async with in_process_worker(settings) as (worker, _task, _stop):
        await wait_until(lambda: worker.stats.rows_written == 1, "the last event")
        assert worker.stats.blocks_recovered == 1 and worker.stats.duplicates_dropped == 0
    assert await _counts(settings) == (7, 28.0, 7, 28.0)
