"""A topic recreated under the same name starts its offsets again at 0, and ClickHouse keeps
its rows: a new block with an old block's offsets is neither dropped nor taken for it."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from promptline.clickhouse import connect
from promptline.kafka import ensure_topics
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import (
    Tenant,
    analytics,
    committed_offsets,
    in_process_worker,
    produce,
    query,
    wait_until,
)
from workers.batch import BlockId, record_marker
from workers.sink import ClickHouseSink
from workers.tables import ANALYTICS, Lineage

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH = "sha256:" + "f" * 64


async def _counts(settings: Settings) -> tuple[object, ...]:
    raw = await query(settings, "SELECT count(), sum(latency_ms) FROM analytics_events")
    hourly = await query(settings, "SELECT sum(events), sum(latency_sum) FROM analytics_hourly")
    return raw[0] + hourly[0]


async def _recreate(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        await wait_until(lambda: _gone(admin, topic), f"{topic} deleted", within=30, every=0.2)
    finally:
        await admin.close()
    await ensure_topics(settings)


async def _gone(admin: AIOKafkaAdminClient, topic: str) -> bool:
    return topic not in await admin.list_topics()


async def _fence(settings: Settings, topic: str, offset: int) -> None:
    """Commit ``offset`` for every partition, as a worker's fence does before it inserts."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        consumer.assign(tps)
        await consumer.commit({tp: offset for tp in tps})
    finally:
        await consumer.stop()


async def test_a_recreated_topic_is_stored_whole_beside_the_old_rows(migrated: Settings) -> None:
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS)
    tenant, prompt = Tenant(), uuid.uuid4()  # one prompt: one partition, offsets 0, 1, 2
    old = [analytics(tenant, prompt, HASH, latency=n) for n in (1, 2, 3)]
    async with in_process_worker(migrated):
        await produce(migrated, old)
        await wait_until(
            lambda: _committed(migrated, topic, 3), "the first topic's events committed"
        )
    assert await _counts(migrated) == (3, 6.0, 3, 6.0)

    await _recreate(migrated, topic)  # what `make down` and `make up` do to the local broker
    again = migrated.model_copy(
        update={"kafka_consumer_group": f"{migrated.kafka_consumer_group}-2"}
    )
    new = [analytics(tenant, prompt, HASH, latency=n) for n in (10, 20, 30)]
    await produce(again, new)
    # A fence at 0 was committed, and the worker went away: the next owner takes over at 0,
    # where ClickHouse holds the old topic's block 0..2, and Kafka holds other records.
    await _fence(again, topic, 0)
    async with in_process_worker(again) as (worker, _task, _stop):
        await wait_until(lambda: _committed(again, topic, 3), "the new topic's events committed")
        assert worker.stats.blocks_recovered == 0  # the old block is not the uncommitted one
        assert worker.stats.rows_written == 3  # and the new one is not dropped as its repeat
    assert await _counts(migrated) == (6, 66.0, 6, 66.0)


async def _committed(settings: Settings, topic: str, count: int) -> bool:
    return (await committed_offsets(settings, [EventKind.ANALYTICS])).get(topic, 0) >= count


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), ())


async def test_the_same_offsets_with_other_records_are_another_block(migrated: Settings) -> None:
    """The insert token: a retry of a block is dropped, other records at its offsets are not."""
    tenant, prompt = Tenant(), uuid.uuid4()
    tp = TopicPartition("t", 0)

    def block(latencies: list[float]) -> tuple[BlockId, list[list[object]]]:
        records = [analytics(tenant, prompt, HASH, latency=value) for value in latencies]
        kafka = [_record(n, record.to_bytes()) for n, record in enumerate(records)]
        name = BlockId(tp, 0, len(records) - 1, record_marker(kafka[0]))
        rows = [
            [*ANALYTICS.to_row(record, Lineage(0, n)), name.first, name.last, name.marker, 2, 0]
            for n, record in enumerate(records)
        ]
        return name, rows

    sink = ClickHouseSink(await connect(migrated))
    try:
        first, first_rows = block([1.0, 2.0])
        other, other_rows = block([5.0, 7.0])
        assert (first.first, first.last) == (other.first, other.last)
        for name, rows in ((first, first_rows), (first, first_rows), (other, other_rows)):
            token = name.token(ANALYTICS.month(rows[0]))
            await sink.write(ANALYTICS.table, ANALYTICS.insert_columns, rows, token)
    finally:
        await sink.close()
    assert await _counts(migrated) == (4, 15.0, 4, 15.0)
