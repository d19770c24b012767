"""What a worker knows about its own progress, for its health endpoint and its metrics.

The consume loop, the ClickHouse sink and the block writer report here what they do (records
read, offsets committed, inserts that failed and why, dead letters); the health endpoint and
the Prometheus metrics read it. Nothing here talks to Kafka or ClickHouse, and nothing here
decides anything: it only remembers, so that a worker that is held still can say so and why.

A worker is held still for one of two reasons, which an operator handles differently:
``UNREACHABLE`` (ClickHouse cannot be reached or is overloaded: wait, or fix ClickHouse) and
``STUCK`` (ClickHouse answers but refuses a block whole, even record by record: a schema bug, a
dropped table, a broken view; someone must fix the warehouse).

Everything here runs on the worker's event loop, one callback at a time, so nothing needs a
lock; readers in other threads must not touch it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from aiokafka import TopicPartition


class Hold(StrEnum):
    """Why a worker is waiting instead of storing."""

    UNREACHABLE = "clickhouse_unreachable"
    STUCK = "stuck_on_block"


@dataclass(slots=True)
class Waiting:
    """The wait in progress: why, what ClickHouse said, and since when (monotonic seconds)."""

    hold: Hold
    reason: str
    since: float


@dataclass(slots=True)
class _Span:
    """Records read together: up to ``next_offset``, the first written at ``first_ms``."""

    next_offset: int
    first_ms: int


@dataclass(slots=True)
class PartitionProgress:
    """One assigned partition, as far as this worker knows it.

    ``read_to``: the furthest offset read (records exist up to there, even after a batch is
    dropped to be read again); ``highwater``: the broker's end offset of the last fetch;
    ``committed``: the group's committed offset; ``oldest_unstored_ms``: the Kafka timestamp of
    the oldest record read but not stored; ``waiting_since``: since when (monotonic) records
    have waited here without committed progress, None while nothing waits.
    """

    read_to: int | None = None
    highwater: int | None = None
    committed: int | None = None
    oldest_unstored_ms: int | None = None
    waiting_since: float | None = None
    spans: deque[_Span] = field(default_factory=deque)

    @property
    def end(self) -> int | None:
        """The furthest offset known to exist: the high-water mark, or what was read if further
        (a broker may report its last batch's start as its end)."""
        known = [offset for offset in (self.read_to, self.highwater) if offset is not None]
        return max(known) if known else None

    @property
    def lag(self) -> int | None:
        """Records past the committed offset, if both ends are known."""
        end = self.end
        if end is None or self.committed is None:
            return None
        return max(0, end - self.committed)

    @property
    def has_waiting(self) -> bool:
        """Whether records exist past the committed offset (or were read, before any commit)."""
        if self.committed is None:
            return self.read_to is not None
        end = self.end
        return end is not None and end > self.committed


class Progress:
    """The worker's own account of its progress (module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.partitions: dict[TopicPartition, PartitionProgress] = {}
        self.waiting: Waiting | None = None
        self.insert_failures: dict[str, int] = {}
        self.dead_letters = 0

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions given to this worker: progress is counted from now."""
        for tp in partitions:
            self.partitions.setdefault(tp, PartitionProgress())

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions taken away: no longer this worker's to report."""
        for tp in partitions:
            self.partitions.pop(tp, None)

    def read(self, tp: TopicPartition, next_offset: int, first_timestamp_ms: int) -> None:
        """Records of ``tp`` were read up to ``next_offset``; the first of them was written to
        Kafka at ``first_timestamp_ms``."""
        partition = self.partitions.setdefault(tp, PartitionProgress())
        partition.spans.append(_Span(next_offset, first_timestamp_ms))
        if partition.oldest_unstored_ms is None:
            partition.oldest_unstored_ms = first_timestamp_ms
        if partition.read_to is None or next_offset > partition.read_to:
            partition.read_to = next_offset
        self._note_waiting(partition)

    def highwater(self, tp: TopicPartition, offset: int | None) -> None:
        """The broker's end offset of ``tp`` as of the consumer's last fetch."""
        partition = self.partitions.get(tp)
        if partition is not None and offset is not None:
            partition.highwater = offset
            self._note_waiting(partition)

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets committed after their records were stored (or dead-lettered).

        A commit of the offset already committed (the flush's fence) is no progress; one that
        moves back (a recreated topic) starts the partition's account again.
        """
        now = self.clock()
        for tp, offset in offsets.items():
            partition = self.partitions.setdefault(tp, PartitionProgress())
            before, partition.committed = partition.committed, offset
            if before is not None and offset < before:
                partition.read_to = partition.highwater = partition.oldest_unstored_ms = None
                partition.spans.clear()
            if before is not None and offset <= before:
                self._note_waiting(partition)
                continue
            spans = partition.spans
            while spans and spans[0].next_offset <= offset:
                spans.popleft()
            partition.oldest_unstored_ms = spans[0].first_ms if spans else None
            partition.waiting_since = now if partition.has_waiting else None
            if before is not None:
                self.waiting = None  # a flush completed: whatever held the worker is over

    def rewound(self, tp: TopicPartition) -> None:
        """A batch was dropped to be read again: what was read is no longer held in memory
        (its records still wait, so the time without progress runs on)."""
        partition = self.partitions.get(tp)
        if partition is not None:
            partition.spans.clear()

    def wait(self, hold: Hold, reason: str) -> None:
        """The worker waits before trying ClickHouse again (kept until :meth:`stored`)."""
        if self.waiting is None or self.waiting.hold != hold:
            self.waiting = Waiting(hold, reason, self.clock())
        else:
            self.waiting.reason = reason

    def stored(self) -> None:
        """ClickHouse took an insert: whatever the worker waited for is over."""
        self.waiting = None

    def reached(self) -> None:
        """ClickHouse answered a call (a lookup, say): it can be reached again, though a block it
        refused may still hold the worker."""
        if self.waiting is not None and self.waiting.hold is Hold.UNREACHABLE:
            self.waiting = None

    def insert_failed(self, reason: str) -> None:
        """Count one failed insert attempt by reason (a short label, not a message)."""
        self.insert_failures[reason] = self.insert_failures.get(reason, 0) + 1

    def dead_lettered(self, count: int) -> None:
        """Count records sent to the dead-letter topic."""
        self.dead_letters += count

    def _note_waiting(self, partition: PartitionProgress) -> None:
        if not partition.has_waiting:
            partition.waiting_since = None
        elif partition.waiting_since is None:
            partition.waiting_since = self.clock()
