"""The accumulator: rows gathered per table and per partition, with the offsets they came from.

A flush inserts one *block* per partition: every record read from it since the last flush,
offsets ``first..last``. The block's deduplication token is derived from that range alone,
and every row records the range, so whoever owns the partition next can insert exactly the
same block again (ARCHITECTURE.md, "Effectively once").
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition


def range_token(ranges: Mapping[TopicPartition, tuple[int, int]]) -> str:
    """The same token for the same offset ranges, whatever the order they were read in."""
    parts = sorted(
        f"{tp.topic}:{tp.partition}:{first}-{last}" for tp, (first, last) in ranges.items()
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass(slots=True)
class PendingRows:
    """Rows for one table and the Kafka ranges they were read from."""

    rows: list[list[Any]] = field(default_factory=list)
    ranges: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)

    def dedup_token(self) -> str:
        """The same token for the same records: a retried insert is dropped by ClickHouse."""
        return range_token(self.ranges)


@dataclass(slots=True)
class Block:
    """One partition's share of a batch: every offset read from it since the last flush.

    ``table`` is None when every record of the range was dead-lettered: the offsets still
    move, but there is nothing to insert.
    """

    tp: TopicPartition
    first: int
    last: int
    table: str | None = None
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def token(self) -> str:
        """The insert deduplication token: a function of the offset range alone."""
        return block_token(self.tp, self.first, self.last)


def block_token(tp: TopicPartition, first: int, last: int) -> str:
    """The deduplication token of the block of ``tp`` holding offsets ``first..last``."""
    return range_token({tp: (first, last)})


class Batch:
    """Everything read since the last flush; flushed by size or by age."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self._max_rows = max_rows
        self._max_seconds = max_seconds
        self.tables: dict[str, PendingRows] = {}
        self.next_offsets: dict[TopicPartition, int] = {}
        self._blocks: dict[TopicPartition, Block] = {}
        self._rows = 0
        self._started: float | None = None

    def add(
        self, table: str | None, tp: TopicPartition, offset: int, row: list[Any] | None
    ) -> None:
        """Record that ``offset`` was consumed; ``row`` is None for a dead-lettered record."""
        if self._started is None:
            self._started = time.monotonic()
        self.next_offsets[tp] = offset + 1
        block = self._blocks.get(tp)
        if block is None:
            block = self._blocks[tp] = Block(tp, offset, offset)
        block.last = offset
        if table is None or row is None:
            return
        block.table = table
        block.rows.append(row)
        pending = self.tables.setdefault(table, PendingRows())
        pending.rows.append(row)
        first, _last = pending.ranges.get(tp, (offset, offset))
        pending.ranges[tp] = (first, offset)
        self._rows += 1

    def blocks(self) -> list[Block]:
        """One block per partition read, in a stable order, rows in offset order."""
        return [self._blocks[tp] for tp in sorted(self._blocks)]

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
        self.tables.clear()
        self.next_offsets.clear()
        self._blocks.clear()
        self._rows = 0
        self._started = None
