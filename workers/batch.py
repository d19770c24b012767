"""The accumulator: rows gathered per table, with the offsets they came from."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition


@dataclass(slots=True)
class PendingRows:
    """Rows for one table and the Kafka ranges they were read from."""

    rows: list[list[Any]] = field(default_factory=list)
    ranges: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)

    def dedup_token(self) -> str:
        """The same token for the same records: a retried insert is dropped by ClickHouse."""
        parts = sorted(
            f"{tp.topic}:{tp.partition}:{first}-{last}" for tp, (first, last) in self.ranges.items()
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


class Batch:
    """Everything read since the last flush; flushed by size or by age."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self._max_rows = max_rows
        self._max_seconds = max_seconds
        self.tables: dict[str, PendingRows] = {}
        self.next_offsets: dict[TopicPartition, int] = {}
        self._rows = 0
        self._started: float | None = None

    def add(
        self, table: str | None, tp: TopicPartition, offset: int, row: list[Any] | None
    ) -> None:
        """Record that ``offset`` was consumed; ``row`` is None for a dead-lettered record."""
        if self._started is None:
            self._started = time.monotonic()
        self.next_offsets[tp] = offset + 1
        if table is None or row is None:
            return
        pending = self.tables.setdefault(table, PendingRows())
        pending.rows.append(row)
        first, _last = pending.ranges.get(tp, (offset, offset))
        pending.ranges[tp] = (first, offset)
        self._rows += 1

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
        self._rows = 0
        self._started = None
