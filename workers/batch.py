"""The accumulator: the records read from each partition since the last flush, as blocks.

A flush inserts one *block* per partition: every record read from it since the last flush,
offsets ``first..last``. Offsets alone do not name records, though: they start again at 0
when a topic is recreated (the local broker keeps its topics in memory, while ClickHouse
keeps its rows), and a block of the new topic must neither be dropped as a repeat of an old
block with the same offsets nor be taken for one. So a block is named by its partition, its
offset range and a fingerprint of its first record (its *marker*), which a retry of the same
block reproduces exactly. The insert token is derived from that name, and every row records
it, so whoever owns the partition next can find the block and insert it again with the same
token (ARCHITECTURE.md, "Effectively once").
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

Record: TypeAlias = ConsumerRecord[bytes, bytes]
"""A record as the workers read it: bytes key and value."""


def record_marker(record: Record) -> int:
    """A 64-bit fingerprint of a Kafka record: its timestamp, key and value.

    Edge records carry a unique event id, so two different records practically never share
    one; the same record read twice always does.
    """
    digest = hashlib.sha256(record.timestamp.to_bytes(8, "big", signed=True))
    for part in (record.key, record.value):
        if part is None:
            digest.update(b"\xff" * 8)
        else:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return int.from_bytes(digest.digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class BlockId:
    """What names a block: its partition, offsets ``first..last`` and its first record."""

    tp: TopicPartition
    first: int
    last: int
    marker: int

    def token(self, month: int, piece: int = 0) -> str:
        """The insert deduplication token of the block's rows of ``month`` (YYYYMM) stored by
        insert ``piece``: the same for a retry of that insert only (``workers/writer.py``).
        Piece 0 is the one insert per month made before pieces were recorded."""
        name = f"{self.tp.topic}:{self.tp.partition}:{self.first}-{self.last}:{self.marker:016x}"
        suffix = f":{piece:016x}" if piece else ""
        return hashlib.sha256(f"{name}:{month}{suffix}".encode()).hexdigest()

    @property
    def next_offset(self) -> int:
        """Where consumption of the partition resumes after the block."""
        return self.last + 1


@dataclass(slots=True)
class Block:
    """One partition's share of a batch: every offset read from it since the last flush.

    ``rows`` are the records that decoded, in offset order, and ``records`` the Kafka records
    they came from. ``table`` is None when every record of the range was dead-lettered: the
    offsets still move, but there is nothing to insert.
    """

    tp: TopicPartition
    first: int
    last: int
    marker: int
    table: str | None = None
    rows: list[list[Any]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def id(self) -> BlockId:
        """The block's name, as its rows record it."""
        return BlockId(self.tp, self.first, self.last, self.marker)


class Batch:
    """Everything read since the last flush; flushed by size or by age."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self._max_rows = max_rows
        self._max_seconds = max_seconds
        self.next_offsets: dict[TopicPartition, int] = {}
        self._blocks: dict[TopicPartition, Block] = {}
        self._rows = 0
        self._started: float | None = None

    def add(self, table: str | None, record: Record, row: list[Any] | None) -> None:
        """Record that ``record`` was consumed; ``row`` is None for a dead-lettered record
        (a fetch of one record, :meth:`take`)."""
        tp = TopicPartition(record.topic, record.partition)
        if table is None or row is None:
            self.take(tp, None, record, record, (), ())
        else:
            self.take(tp, table, record, record, (record,), (row,))

    def take(
        self,
        tp: TopicPartition,
        table: str | None,
        first: Record,
        last: Record,
        records: Sequence[Record],
        rows: Sequence[list[Any]],
    ) -> None:
        """Record that the records ``first..last`` of ``tp`` (one fetch) were consumed, of
        which ``records`` decoded to ``rows`` for ``table`` (None when none did), the
        bookkeeping done once per fetch rather than once per record (a microsecond an event)."""
        if self._started is None:
            self._started = time.monotonic()
        self.next_offsets[tp] = last.offset + 1
        block = self._blocks.get(tp)
        if block is None:
            block = Block(tp, first.offset, first.offset, record_marker(first))
            self._blocks[tp] = block
        block.last = last.offset
        if table is None or not rows:
            return
        block.table = table
        block.rows.extend(rows)
        block.records.extend(records)
        self._rows += len(rows)

    def blocks(self) -> list[Block]:
        """One block per partition read, in a stable order, rows in offset order."""
        return [self._blocks[tp] for tp in sorted(self._blocks)]

    def rows_by_table(self) -> dict[str, list[list[Any]]]:
        """Every row of the batch, by destination table."""
        tables: dict[str, list[list[Any]]] = {}
        for block in self.blocks():
            if block.table is not None:
                tables.setdefault(block.table, []).extend(block.rows)
        return tables

    @property
    def rows(self) -> int:
        """Rows gathered (dead-lettered records not counted)."""
        return self._rows

    @property
    def empty(self) -> bool:
        """Nothing consumed since the last flush."""
        return not self.next_offsets

    def due(self) -> bool:
        """Full, or old enough that its rows should be visible to analysts."""
        if self._started is None:
            return False
        return self._rows >= self._max_rows or (
            time.monotonic() - self._started >= self._max_seconds
        )

    def seconds_until_due(self) -> float:
        """How long the consumer may wait for more records before flushing."""
        if self._started is None:
            return self._max_seconds
        return max(0.0, self._max_seconds - (time.monotonic() - self._started))

    def clear(self) -> None:
        """Start a new batch."""
        self.next_offsets.clear()
        self._blocks.clear()
        self._rows = 0
        self._started = None
