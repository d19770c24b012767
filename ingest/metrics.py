"""Prometheus metrics of the HTTP service, in a registry of the application's own.

A registry per application (not the process-global one) keeps test apps apart and lets
``/metrics`` show exactly this service. Label children are cached, since ``labels()``
costs a lock and a dict build per call on the hot path; the per-request counts, which
every call pays, are kept in plain dicts instead (``ingest.request_tally``).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

from ingest.request_tally import RequestTally

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class EdgeMetrics:
    """Requests by route and status, errors by code, produce latency, batch sizes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.tally = RequestTally(LATENCY_BUCKETS)
        self.registry.register(self.tally)
        self.events = Counter(
            "promptline_edge_events",
            "Events the edge handled, by kind and outcome (accepted or an error code).",
            ("kind", "outcome"),
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "promptline_edge_produce_duration_seconds",
            "Time from handing records to the producer to their acknowledgement (acks=all).",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "promptline_edge_batch_events",
            "Events per batch request.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.exposures = Counter(
            "promptline_exposures",
            "Exposures resolve recorded, by outcome: sent (Kafka acknowledged them), or lost "
            "(queue_full: Kafka too slow or down for longer than the queue holds; "
            "kafka_unavailable: not connected; kafka_failed: not acknowledged; shutdown: "
            "still queued when the process stopped).",
            ("outcome",),
            registry=self.registry,
        )
        self._event_children: dict[tuple[str, str], Counter] = {}
        self._produce_children: dict[str, Histogram] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.tally.request(route, method, status, seconds)

    def observe_error(self, route: str, code: str) -> None:
        """Count one error response by its canonical code."""
        self.tally.error(route, code)

    def produce_timer(self, kind: str) -> Histogram:
        """The produce latency histogram's child for ``kind`` (cached, as for events)."""
        child = self._produce_children.get(kind)
        if child is None:
            child = self._produce_children[kind] = self.produce_seconds.labels(kind)
        return child

    def observe_events(self, kind: str, outcome: str, count: int = 1) -> None:
        """Count events of one kind with one outcome."""
        key = (kind, outcome)
        counter = self._event_children.get(key)
        if counter is None:
            counter = self._event_children[key] = self.events.labels(kind, outcome)
        counter.inc(count)


EDGE_METRICS = web.AppKey("edge_metrics", EdgeMetrics)
