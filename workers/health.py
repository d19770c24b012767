"""Whether a worker is healthy: records wait on a partition and nothing is committed for long.

A worker that retries ClickHouse forever is alive but useless, and a health check that only
asks "is the process up" hides it while compare goes stale. So the verdict is about progress:
a worker is unhealthy when some assigned partition has had records waiting (read, or past the
committed offset at the broker) without any committed progress for longer than
``worker_stall_seconds``, or when it has waited on ClickHouse for that long. The reason says
why, as far as the worker knows, because the remedies differ: ClickHouse unreachable (it
retries by itself once ClickHouse is back), stuck on a block (ClickHouse refuses it whole:
someone must fix the warehouse), or no progress for a cause the worker does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from workers.progress import Hold, PartitionProgress, Progress

NO_PROGRESS = "no_progress"
"""The hold named when partitions stall while the worker waits on nothing it knows of."""


@dataclass(frozen=True, slots=True)
class StalledPartition:
    """A partition with records waiting and no committed progress for ``seconds``."""

    tp: TopicPartition
    seconds: float
    committed: int | None
    end: int | None

    def as_dict(self) -> dict[str, Any]:
        """The partition as the health endpoint shows it."""
        return {
            "topic": self.tp.topic,
            "partition": self.tp.partition,
            "committed": self.committed,
            "end": self.end,
            "stalled_seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict: healthy, or why not (``hold``, ``reason``) and where (``partitions``)."""

    healthy: bool
    hold: str | None = None
    reason: str | None = None
    partitions: list[StalledPartition] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The verdict as the health endpoint's body shows it (without the counters)."""
        if self.healthy:
            return {"status": "ok"}
        return {
            "status": "unhealthy",
            "reason": self.reason,
            "hold": self.hold,
            "partitions": [partition.as_dict() for partition in self.partitions],
        }


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def stalled_for(partition: PartitionProgress, now: float) -> float:
    """Seconds records have waited on ``partition`` without committed progress (0 if none)."""
    if partition.waiting_since is None or not partition.has_waiting:
        return 0.0
    return max(0.0, now - partition.waiting_since)


def assess(progress: Progress, stall_seconds: float) -> Health:
    """The worker's health as of now (module docstring)."""
    now = progress.clock()
    stalled = [
        StalledPartition(tp, seconds, partition.committed, partition.end)
        for tp, partition in sorted(progress.partitions.items())
        if (seconds := stalled_for(partition, now)) > stall_seconds
    ]
    waiting = progress.waiting
    held_for = now - waiting.since if waiting is not None else 0.0
    if not stalled and held_for <= stall_seconds:
        return Health(True)
    if waiting is None:
        longest = max(partition.seconds for partition in stalled)
        reason = (
            f"no committed progress for {_duration(longest)} on {len(stalled)} partition(s) with "
            "records waiting, and no known cause (not waiting on ClickHouse)"
        )
        return Health(False, NO_PROGRESS, reason, stalled)
    if waiting.hold is Hold.UNREACHABLE:
        reason = f"ClickHouse unreachable, waiting for {_duration(held_for)}: {waiting.reason}"
    else:
        reason = (
            f"stuck on a block for {_duration(held_for)}: ClickHouse refuses it whole, record by "
            f"record too: {waiting.reason}"
        )
    return Health(False, waiting.hold.value, reason, stalled)
