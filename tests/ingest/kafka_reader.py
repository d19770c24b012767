"""Reading a topic back from the beginning, for tests that check what the edge produced."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name


async def read_topic(
    settings: Settings, kind: EventKind, expected: int, within: float = 30.0
) -> list[dict[str, Any]]:
    """Every record of ``kind``'s topic, once at least ``expected`` are there (or time is up)."""
    topic = topic_name(settings.kafka_topic_prefix, kind)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + within
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    record["_key"] = message.key.decode() if message.key else None
                    records.append(record)
            if len(records) >= expected:
                end = await consumer.end_offsets(assigned)
                positions = {tp: await consumer.position(tp) for tp in assigned}
                if all(positions[tp] >= end[tp] for tp in assigned):
                    break
        return records
    finally:
        await consumer.stop()
