"""Event outcomes and produce latencies in plain dicts, exported at scrape time.

Every event the edge handles is counted and every produce timed, so these are on the
single-event path. ``prometheus_client``'s labelled ``Counter.inc`` takes a lock and its
``Histogram.observe`` a lock and a scan of the buckets: about 3 µs a single event. Here
an event costs a dict update and a produce a bisect; families are built when scraped,
the same ones ``prometheus_client`` made (``promptline_edge_events_total`` and the
``promptline_edge_produce_duration_seconds`` histogram). The event loop runs one callback
at a time and a scrape copies the dicts first, so nothing needs a lock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector


class _Durations:
    """One kind's histogram: per-bucket counts (not cumulative, the last +Inf) and sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0


class EventTally(Collector):
    """Events by (kind, outcome); produce durations by kind."""

    def __init__(self, produce_buckets: Sequence[float]) -> None:
        self._bounds = tuple(produce_buckets)
        self._events: dict[tuple[str, str], int] = {}
        self._produce: dict[str, _Durations] = {}

    def events(self, kind: str, outcome: str, count: int = 1) -> None:
        """Count ``count`` events of ``kind`` that ended as ``outcome``."""
        key = (kind, outcome)
        self._events[key] = self._events.get(key, 0) + count

    def produced(self, kind: str, seconds: float) -> None:
        """Time one produce call (records handed over until acknowledged) for ``kind``."""
        durations = self._produce.get(kind)
        if durations is None:
            durations = self._produce[kind] = _Durations(len(self._bounds))
        durations.counts[bisect_left(self._bounds, seconds)] += 1
        durations.total += seconds

    def collect(self) -> Iterator[Metric]:
        """The two families, as of now."""
        events = CounterMetricFamily(
            "promptline_edge_events",
            "Events the edge handled, by kind and outcome (accepted or an error code).",
            labels=("kind", "outcome"),
        )
        for (kind, outcome), count in list(self._events.items()):
            events.add_metric((kind, outcome), count)
        produce = HistogramMetricFamily(
            "promptline_edge_produce_duration_seconds",
            "Time from handing records to the producer to their acknowledgement (acks=all).",
            labels=("kind",),
        )
        bounds = [repr(float(bound)) for bound in self._bounds] + ["+Inf"]
        for kind, durations in list(self._produce.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, list(durations.counts), strict=True):
                running += count
                cumulative.append((bound, float(running)))
            produce.add_metric((kind,), cumulative, durations.total)
        yield events
        yield produce
