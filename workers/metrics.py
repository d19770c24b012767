"""Prometheus metrics of a worker, collected at scrape time, in a registry of its own.

The consume loop, the sink and the writer already keep their account in :class:`Progress` and
the worker's counters, so the metrics are read from there when Prometheus asks rather than
updated alongside every call: one source of truth, and nothing on the write path. A registry
per worker (not the process-global one) lets tests build several and shows exactly this
worker. Names follow the edge's (``ingest/metrics.py``): ``promptline_worker_*``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from workers.coordinator import WorkerStats
from workers.health import assess
from workers.progress import Hold, Progress

PREFIX = "promptline_worker"


class WorkerCollector(Collector):
    """Lag, oldest unstored record, failures, dead letters, counters, hold and health."""

    def __init__(
        self,
        progress: Progress,
        stats: WorkerStats,
        stall_seconds: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._progress = progress
        self._stats = stats
        self._stall_seconds = stall_seconds
        self._wall_clock = wall_clock

    def collect(self) -> Iterator[Metric]:
        """Every family, as of now."""
        yield from self._partitions()
        yield from self._failures()
        yield from self._counters()
        yield from self._hold()

    def _partitions(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag",
            "Records past the group's committed offset: the broker's high-water mark of the "
            "last fetch (or the furthest record read, if further) minus the committed offset.",
            labels=("topic", "partition"),
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_oldest_unstored_age_seconds",
            "Age (from its Kafka timestamp) of the oldest record read but not yet stored; "
            "0 when none is.",
            labels=("topic", "partition"),
        )
        now_ms = self._wall_clock() * 1000
        for tp, partition in sorted(self._progress.partitions.items()):
            labels = (tp.topic, str(tp.partition))
            if partition.lag is not None:
                lag.add_metric(labels, partition.lag)
            oldest = partition.oldest_unstored_ms
            age.add_metric(labels, 0.0 if oldest is None else max(0.0, now_ms - oldest) / 1000)
        yield lag
        yield age

    def _failures(self) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            f"{PREFIX}_insert_failures",
            "Failed insert attempts, by ClickHouse error name, 'encoding' or 'unreachable'.",
            labels=("reason",),
        )
        for reason, count in sorted(self._progress.insert_failures.items()):
            failures.add_metric((reason,), count)
        yield failures
        yield CounterMetricFamily(
            f"{PREFIX}_dead_letters",
            "Records sent to the dead-letter topic: poison, or refused by ClickHouse.",
            value=self._progress.dead_letters,
        )

    def _counters(self) -> Iterator[Metric]:
        stats = self._stats
        for name, value, documentation in (
            ("rows_written", stats.rows_written, "Rows inserted into ClickHouse."),
            (
                "duplicates_dropped",
                stats.duplicates_dropped,
                "Events not inserted because they were already stored or repeated in the batch.",
            ),
            (
                "blocks_recovered",
                stats.blocks_recovered,
                "Uncommitted blocks of a previous owner finished when a partition was assigned.",
            ),
            (
                "batches_dropped",
                stats.batches_dropped,
                "Batches dropped to be read again (a lost fence or commit, undelivered dead "
                "letters).",
            ),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)

    def _hold(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            f"{PREFIX}_held",
            "1 while the worker waits to retry ClickHouse, by why: clickhouse_unreachable or "
            "stuck_on_block (a block refused whole).",
            labels=("hold",),
        )
        held_seconds = GaugeMetricFamily(
            f"{PREFIX}_held_seconds",
            "How long the current wait on ClickHouse has lasted, by why; 0 when not held.",
            labels=("hold",),
        )
        waiting = self._progress.waiting
        now = self._progress.clock()
        for hold in Hold:
            current = waiting is not None and waiting.hold is hold
            held.add_metric((hold.value,), 1.0 if current else 0.0)
            since = waiting.since if waiting is not None and current else now
            held_seconds.add_metric((hold.value,), max(0.0, now - since))
        yield held
        yield held_seconds
        yield GaugeMetricFamily(
            f"{PREFIX}_healthy",
            "1 while /healthz answers 200; 0 while records wait without committed progress for "
            "longer than worker_stall_seconds.",
            value=1.0 if assess(self._progress, self._stall_seconds).healthy else 0.0,
        )


class WorkerMetrics:
    """The worker's registry: its own collector, plus the process's (CPU, memory, files)."""

    def __init__(self, collector: WorkerCollector) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self._process = CollectorRegistry()
        ProcessCollector(registry=self._process)

    async def exposition(self) -> bytes:
        """Every metric in the text format. The worker's own are read on the event loop, which
        owns :class:`Progress`; the process's read ``/proc``, so in a thread."""
        own = generate_latest(self.registry)
        return own + await asyncio.to_thread(generate_latest, self._process)
