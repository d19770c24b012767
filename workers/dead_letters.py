"""Poison records go to the dead-letter topic with the reason, and the worker goes on."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


class DeadLetters:
    """Produces poison records, unchanged, with headers that say where from and why."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def send(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Park one record; waits for the broker so its offset may then be committed."""
        headers = [
            ("reason", reason.encode()),
            ("source_topic", record.topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
        ]
        await self._producer.send_and_wait(
            self.topic, value=record.value, key=record.key, headers=headers
        )
