"""The consume loop: read, decode, batch, insert, and only then commit offsets.

One flush, for the blocks it holds (one per partition read):

1. *fence*: commit each partition's current offset again. It changes nothing, but Kafka
   refuses it from a worker that has lost the partition (a paused or cut-off "zombie"), which
   then drops its batch instead of inserting what the partition's new owner also reads;
2. look up which events of the batch are already stored, and drop them and any repeat
   within the batch (``workers/dedup.py``);
3. insert each block, a month at a time, with a token derived from its name (offsets and
   first record, ``workers/batch.py``) and the month (``workers/writer.py``), once the
   batch's poison records are in the dead-letter topic; a month ClickHouse refuses for its
   data is dead-lettered too (``workers/sink.py``), so it cannot hold its partition still;
4. commit the offsets after the blocks and those dead letters.

A worker that dies after 3 and before 4 leaves one uncommitted block per partition; the next
owner re-inserts exactly that block before reading on (``workers/recovery.py``).

While a flush waits on ClickHouse and Kafka, the records fetched already are decoded for the
next batch, which starts with them only if the flush moved no partition's position.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from workers.batch import Batch, Block, Record
from workers.dead_letters import DeadLetters, refused_reason
from workers.decode import Poison, decode
from workers.dedup import DuplicateFinder, first_copies
from workers.progress import Progress
from workers.recovery import BlockRecovery
from workers.sink import ClickHouseSink, Interrupted
from workers.tables import Key, Lineage, TableSpec
from workers.writer import BlockWriter

log = logging.getLogger(__name__)

Decoded: TypeAlias = tuple[Record, list[Any] | Poison]
"""A record read and what it decoded to: a row, or why it is poison."""
READ_AHEAD_SLICE = 500
"""Records decoded between two turns of the event loop while reading ahead."""


@dataclass(slots=True)
class WorkerStats:
    """Counters for the health endpoint and the logs."""

    rows_written: int = 0
    duplicates_dropped: int = 0
    dead_lettered: int = 0
    blocks_recovered: int = 0
    batches_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)


class WarehouseWorker:
    """Moves records from Kafka into ClickHouse, storing each event once (module docstring)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        sink: ClickHouseSink,
        dead_letters: DeadLetters,
        specs_by_topic: dict[str, TableSpec],
        batch: Batch,
        duplicates: DuplicateFinder,
        recovery: BlockRecovery,
        progress: Progress | None = None,
    ) -> None:
        self._consumer = consumer
        self.progress = progress or Progress()
        self._sink = sink
        self._writer = BlockWriter(sink, self.progress)
        self._dead_letters = dead_letters
        self._specs = specs_by_topic
        self._by_table = {spec.table: spec for spec in specs_by_topic.values()}
        self._batch = batch
        self._duplicates = duplicates
        self._recovery = recovery
        self._lock = asyncio.Lock()
        self._takeovers = 0
        self._resumed: dict[TopicPartition, int] = {}
        self._rewound: set[TopicPartition] = set()
        self.stats = WorkerStats()

    @property
    def rows_written(self) -> int:
        """Rows inserted into ClickHouse by this process."""
        return self.stats.rows_written

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        """Flushes before partitions go; finishes uncommitted blocks when they come."""
        return _Rebalance(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then flush what is left.

        Once ``stop`` is set, no wait for ClickHouse is sat out: a flush that would wait is
        given up without committing, and its records are read again by whoever owns their
        partitions next.
        """
        watcher = asyncio.create_task(self._interrupt_when(stop))
        try:
            while not stop.is_set():
                if self._batch.due():
                    # Filled by what the last flush read ahead. The lock is let go between
                    # flushes: a rebalance waiting for it goes first (asyncio's lock is fair).
                    async with self._lock:
                        if self._batch.due():
                            await self._flush_reading_ahead()
                    continue
                timeout_ms = max(1, int(self._batch.seconds_until_due() * 1000))
                takeovers = self._takeovers
                records = await self._consumer.getmany(timeout_ms=min(timeout_ms, 500))
                async with self._lock:
                    if takeovers != self._takeovers:
                        self._fetch_again(records)
                        records = {}
                    for tp, messages in records.items():
                        await self._take(tp, self._decoded(tp, messages))
                    if self._batch.due():
                        await self._flush_reading_ahead()
            await self.flush()
        except Interrupted:
            log.info("stopping: the flush under way is given up, nothing more is committed")
        finally:
            watcher.cancel()

    async def _interrupt_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._sink.interrupt()

    async def flush(self) -> None:
        """Write the batch to ClickHouse, then commit its offsets."""
        async with self._lock:
            await self._flush_locked()

    async def take_over(self, assigned: Sequence[TopicPartition]) -> None:
        """Re-insert the uncommitted block of each newly assigned partition, then skip past it.

        If this fails (Kafka cannot say what is committed), the partitions are read from
        their committed offsets as usual: the duplicate lookup still stores nothing twice,
        and only a view that had missed the block would stay short of it.
        """
        async with self._lock:
            resume: dict[TopicPartition, int] = {}
            try:
                for topic, spec in self._specs.items():
                    committed: dict[TopicPartition, int] = {}
                    for tp in assigned:
                        if tp.topic == topic:
                            offset = await self._consumer.committed(tp)
                            if offset is not None:
                                committed[tp] = offset
                    self.progress.committed(committed)  # where lag is counted from
                    for block in await self._recovery.recover(spec, committed):
                        self._consumer.seek(block.tp, block.next_offset)
                        resume[block.tp] = block.next_offset
                        self.stats.blocks_recovered += 1
            except KafkaError:
                log.exception("could not read committed offsets; skipping block recovery")
            except Interrupted:
                log.info("stopping: block recovery given up, nothing committed for it")
                return
            finally:
                # After the seeks: records of a fetch begun before this may predate them.
                self._resumed = resume
                self._takeovers += 1
            if resume:
                # If this commit is lost, the next owner recovers the same blocks again: a no-op.
                await self._commit(resume, [], "commit after recovery")

    def _fetch_again(self, records: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Set aside records fetched while partitions were being assigned.

        The fetch runs beside the rebalance callback, so it may hand over records of a
        partition read from its committed offset before the takeover moved past a recovered
        block, and taking them would read the block again. They are read again instead, from
        where they start, or from past the recovered block.
        """
        assigned = self._consumer.assignment()
        for tp, messages in records.items():
            # A partition a dropped flush rewound was sought to its block already.
            if tp in assigned and messages and tp not in self._rewound:
                self._consumer.seek(tp, max(messages[0].offset, self._resumed.get(tp, 0)))

    def _decoded(self, tp: TopicPartition, messages: Sequence[Record]) -> list[Decoded]:
        spec = self._specs[tp.topic]
        return [
            (message, decode(spec, message.value, Lineage(tp.partition, message.offset)))
            for message in messages
        ]

    async def _flush_reading_ahead(self) -> None:
        """Flush, and while ClickHouse and Kafka answer it, fetch and decode what comes next.

        A flush spends most of its time waiting; decoding the next records meanwhile lets
        the server's work and the worker's overlap. They are taken into the next batch only
        if the flush changed nothing about where partitions are read from (no rewind, no
        takeover); otherwise they are read again from where they start.
        """
        takeovers = self._takeovers
        self._rewound.clear()
        ahead = asyncio.create_task(self._read_ahead())
        try:
            await self._flush_locked()
        finally:
            # Taken or read again below; if the flush failed, the worker stops, and what
            # was read ahead is uncommitted, for the partitions' next owners to read.
            decoded = await ahead
        if takeovers != self._takeovers or self._rewound:
            self._fetch_again(
                {tp: [message for message, _row in items] for tp, items in decoded.items()}
            )
            return
        for tp, items in decoded.items():
            await self._take(tp, items)

    async def _read_ahead(self) -> dict[TopicPartition, list[Decoded]]:
        """The records fetched already, decoded a slice at a time (the flush goes on between)."""
        try:
            records = await self._consumer.getmany(timeout_ms=0)
        except KafkaError as error:
            log.info("reading ahead failed (%r); reading on after the flush", error)
            return {}
        decoded: dict[TopicPartition, list[Decoded]] = {}
        for tp, messages in records.items():
            items = decoded[tp] = []
            for start in range(0, len(messages), READ_AHEAD_SLICE):
                items.extend(self._decoded(tp, messages[start : start + READ_AHEAD_SLICE]))
                await asyncio.sleep(0)
        return decoded

    async def _take(self, tp: TopicPartition, items: Sequence[Decoded]) -> None:
        if not items:
            return
        self.progress.read(tp, items[-1][0].offset + 1, items[0][0].timestamp)
        records: list[Record] = []
        rows: list[list[Any]] = []
        for message, row in items:
            if isinstance(row, Poison):
                log.warning(
                    "dead-lettering %s[%d]@%d: %s",
                    tp.topic,
                    tp.partition,
                    message.offset,
                    row.reason,
                )
                await self._dead_letters.park(message, row.reason)
                self.stats.dead_lettered += 1
                self.progress.dead_lettered(1)
            else:
                records.append(message)
                rows.append(row)
        table = self._specs[tp.topic].table
        self._batch.take(tp, table, items[0][0], items[-1][0], records, rows)

    async def _flush_locked(self) -> None:
        blocks = self._batch.blocks()
        if not blocks:
            return
        try:
            if not await self._commit({b.tp: b.first for b in blocks}, blocks, "fence"):
                return
            # A block stored means its poison is parked: recovery does not park it again.
            if not await self._deliver(blocks):
                return
            try:
                await self._insert(blocks)
            except Interrupted:
                self._rewind(blocks)
                raise
            if not await self._deliver(blocks):
                return
            await self._commit({b.tp: b.last + 1 for b in blocks}, blocks, "commit")
        finally:
            self._batch.clear()

    async def _deliver(self, blocks: list[Block]) -> bool:
        """Wait for the dead letters sent so far; if Kafka fails them, read the batch again."""
        try:
            await self._dead_letters.delivered()
            return True
        except KafkaError as error:
            log.warning("dead letters not delivered (%r); dropping the batch", error)
        self.stats.batches_dropped += 1
        self._rewind(blocks)
        return False

    async def _insert(self, blocks: list[Block]) -> None:
        stored = await self._duplicates.stored_by_table(
            [(self._by_table[table], rows) for table, rows in self._batch.rows_by_table().items()]
        )
        seen: set[Key] = set()
        for block in blocks:
            if block.table is None:
                continue
            spec = self._by_table[block.table]
            kept = first_copies(spec, block.rows, stored[block.table], seen)
            self.stats.duplicates_dropped += len(block.rows) - len(kept)
            if not kept:
                continue
            rows = [block.rows[index] for index in kept]
            refused = await self._writer.write(spec, block.id, rows, len(rows))
            for refusal in refused:
                records = [block.records[kept[index]] for index in refusal.rows]
                await self._park_refused(records, refusal.reason)
            self.stats.rows_written += len(rows) - sum(len(r.rows) for r in refused)

    async def _park_refused(self, records: Sequence[Record], reason: str) -> None:
        for record in records:
            await self._dead_letters.park(record, refused_reason(reason))
        self.stats.dead_lettered += len(records)
        self.progress.dead_lettered(len(records))

    async def _commit(
        self, offsets: dict[TopicPartition, int], blocks: list[Block], what: str
    ) -> bool:
        try:
            await self._consumer.commit(offsets)
            self.progress.committed(offsets)  # a fence, the same offsets again, is no progress
            return True
        except (CommitFailedError, IllegalStateError) as error:
            # The group is moving partitions: their next owner reads (or recovers) the batch.
            log.warning("%s failed, partitions are moving (%r); dropping the batch", what, error)
        except KafkaError as error:
            log.warning("%s failed (%r); dropping the batch to read it again", what, error)
        self.stats.batches_dropped += 1
        self._rewind(blocks)
        return False

    def _rewind(self, blocks: list[Block]) -> None:
        """Read dropped blocks again if the partitions stay; a new assignment resets anyway."""
        assigned = self._consumer.assignment()
        for block in blocks:
            self._rewound.add(block.tp)
            if block.tp in assigned:
                self._consumer.seek(block.tp, block.first)
                self.progress.rewound(block.tp)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: WarehouseWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            try:
                await self._worker.flush()
            except Interrupted:
                log.info("stopping: the flush before the rebalance is given up")
            self._worker.progress.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
        self._worker.progress.assigned(assigned)
        await self._worker.take_over(assigned)
