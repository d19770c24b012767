"""The consume loop: read, decode, batch, insert, and only then commit offsets."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord

from workers.batch import Batch
from workers.dead_letters import DeadLetters
from workers.decode import Poison, decode
from workers.sink import ClickHouseSink
from workers.tables import Lineage, TableSpec

log = logging.getLogger(__name__)


class WarehouseWorker:
    """Moves records from Kafka into ClickHouse; at-least-once, made exact by dedup keys.

    A crash between insert and commit replays the batch; ClickHouse drops the replay
    (same deduplication token, same row keys), so each event is stored once.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        sink: ClickHouseSink,
        dead_letters: DeadLetters,
        specs_by_topic: dict[str, TableSpec],
        batch: Batch,
    ) -> None:
        self._consumer = consumer
        self._sink = sink
        self._dead_letters = dead_letters
        self._specs = specs_by_topic
        self._batch = batch
        self._lock = asyncio.Lock()
        self.rows_written = 0

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        """Flushes what was read from partitions before they are handed to another worker."""
        return _FlushOnRevoke(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then flush what is left."""
        while not stop.is_set():
            timeout_ms = max(1, int(self._batch.seconds_until_due() * 1000))
            records = await self._consumer.getmany(timeout_ms=min(timeout_ms, 500))
            async with self._lock:
                for tp, messages in records.items():
                    await self._take(tp, messages)
                if self._batch.due():
                    await self._flush_locked()
        await self.flush()

    async def flush(self) -> None:
        """Write the batch to ClickHouse, then commit its offsets."""
        async with self._lock:
            await self._flush_locked()

    async def _take(self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]]) -> None:
        spec = self._specs[tp.topic]
        for message in messages:
            row = decode(spec, message.value, Lineage(tp.partition, message.offset))
            if isinstance(row, Poison):
                log.warning(
                    "dead-lettering %s[%d]@%d: %s",
                    tp.topic,
                    tp.partition,
                    message.offset,
                    row.reason,
                )
                await self._dead_letters.send(message, row.reason)
                self._batch.add(None, tp, message.offset, None)
            else:
                self._batch.add(spec.table, tp, message.offset, row)

    async def _flush_locked(self) -> None:
        if self._batch.empty:
            return
        for table, pending in self._batch.tables.items():
            spec = next(spec for spec in self._specs.values() if spec.table == table)
            await self._sink.write(table, spec.columns, pending.rows, pending.dedup_token())
            self.rows_written += len(pending.rows)
        offsets = dict(self._batch.next_offsets)
        self._batch.clear()
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as error:
            # The group rebalanced: the new owner replays from the last commit, and the
            # replay is deduplicated in ClickHouse, so nothing is lost or counted twice.
            log.warning("offset commit failed after a rebalance: %r", error)


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: WarehouseWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            await self._worker.flush()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
