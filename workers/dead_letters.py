"""Poison records go to the dead-letter topic with the reason, and the worker goes on.

A dead letter is the original record, unchanged (key and value), with headers saying why
and where it was read. ``origin`` names where the record was *first* read: a replayed dead
letter that fails again keeps its origin, so listing and replaying treat every attempt at
one record as one dead letter.

Records are parked many at a time: each send only enqueues (the producer batches them), and
the worker awaits every delivery at once before it inserts the batch they came with, and
again before it commits (``workers/coordinator.py``): a stored block, or a committed
offset, always means its dead letters reached Kafka.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

ORIGIN_HEADER = "promptline-origin"
"""Set on replayed records and on dead letters: ``topic/partition/offset`` first read at."""


def refused_reason(reason: str) -> str:
    """The dead-letter reason of a record whose block ClickHouse refused for its data."""
    return f"refused by ClickHouse: {reason}"


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    """A record header's value as text, if the record has it."""
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


def origin_of(record: ConsumerRecord[bytes, bytes]) -> str:
    """Where ``record`` was first read: its own position, unless it is a replay."""
    return header(record, ORIGIN_HEADER) or f"{record.topic}/{record.partition}/{record.offset}"


class DeadLetters:
    """Produces poison records, unchanged, with headers that say where from and why."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._pending: list[asyncio.Future[object]] = []

    async def park(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Send one record to the dead-letter topic; :meth:`delivered` waits for it."""
        headers = [
            ("reason", reason.encode()),
            ("source_topic", record.topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
            (ORIGIN_HEADER, origin_of(record).encode()),
        ]
        delivery = await self._producer.send(
            self.topic, value=record.value, key=record.key, headers=headers
        )
        self._pending.append(delivery)

    async def delivered(self) -> None:
        """Wait until every record parked so far is in Kafka; raises the first failure."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as read back from the dead-letter topic."""

    partition: int
    offset: int
    timestamp_ms: int
    reason: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    origin: str
    key: bytes | None
    value: bytes | None

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        """Parse the headers a worker wrote; tolerant of records written by hand."""
        source_topic = header(record, "source_topic") or ""
        partition, offset = header(record, "source_partition"), header(record, "source_offset")
        source_partition = int(partition) if partition and partition.isdigit() else None
        source_offset = int(offset) if offset and offset.isdigit() else None
        origin = header(record, ORIGIN_HEADER) or f"{source_topic}/{partition}/{offset}"
        return cls(
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            reason=header(record, "reason") or "(no reason recorded)",
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            origin=origin,
            key=record.key,
            value=record.value,
        )

    def preview(self, width: int = 120) -> str:
        """The value as text, cut to ``width`` characters."""
        if self.value is None:
            return "(empty)"
        text = self.value.decode(errors="replace").replace("\n", "\\n")
        return text if len(text) <= width else text[: width - 1] + "…"
