"""Both edge clients put a key on the same partition, so a prompt's records stay together.

The workers' duplicate lookup relies on every copy of an event landing on one partition
(ARCHITECTURE.md, "Effectively once"): a switch of client, or a fleet running both during
a rollout, must not move a prompt to another partition.
"""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ingest.producer import Outgoing
from ingest.resources import edge_producer
from promptline.kafka import ensure_topics
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name

pytestmark = [pytest.mark.kafka]


async def _partitions_by_key(
    settings: Settings, topic: str, expected: int
) -> dict[bytes, set[int]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: dict[bytes, set[int]] = {}
        seen = 0
        deadline = time.monotonic() + 30
        while seen < expected and time.monotonic() < deadline:
            for partition, messages in (await consumer.getmany(timeout_ms=200)).items():
                for message in messages:
                    assert message.key is not None
                    found.setdefault(message.key, set()).add(partition.partition)
                    seen += 1
        return found
    finally:
        await consumer.stop()


async def test_aiokafka_and_confluent_place_each_key_on_the_same_partition(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"kafka_topic_partitions": 6})
    await ensure_topics(settings)
    topic = topic_name(settings.kafka_topic_prefix, EventKind.ANALYTICS)
    keys = [str(uuid.uuid4()).encode() for _ in range(60)]
    for client in ("aiokafka", "confluent"):
        producer = edge_producer(settings.model_copy(update={"edge_kafka_client": client}))
        await producer.start()
        try:
            outcomes = await producer.produce_many(
                [Outgoing(topic, key, client.encode()) for key in keys]
            )
            assert outcomes == [None] * len(keys)
            await producer.produce(topic, keys[0], client.encode())
        finally:
            await producer.stop()
    placed = await _partitions_by_key(settings, topic, 2 * len(keys) + 2)
    assert set(placed) == set(keys)
    assert all(len(partitions) == 1 for partitions in placed.values()), placed
    assert len({next(iter(partitions)) for partitions in placed.values()}) > 1  # spread
