"""Prometheus metrics of the HTTP service, in a registry of the application's own.

A registry per application (not the process-global one) keeps test apps apart and lets
``/metrics`` show exactly this service. What every request or event pays for (request
counts and latencies, event outcomes, produce times) is kept in plain dicts and exported
at scrape time (``ingest.request_tally``, ``ingest.event_tally``): ``prometheus_client``'s
labelled children take a lock per update.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

from ingest.event_tally import EventTally
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
        self.event_tally = EventTally(LATENCY_BUCKETS)
        self.registry.register(self.event_tally)
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

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.tally.request(route, method, status, seconds)

    def observe_error(self, route: str, code: str) -> None:
        """Count one error response by its canonical code."""
        self.tally.error(route, code)

    def observe_produce(self, kind: str, seconds: float) -> None:
        """Time one produce call (records handed over until acknowledged) for ``kind``."""
        self.event_tally.produced(kind, seconds)

    def observe_events(self, kind: str, outcome: str, count: int = 1) -> None:
        """Count events of one kind with one outcome."""
        self.event_tally.events(kind, outcome, count)


EDGE_METRICS = web.AppKey("edge_metrics", EdgeMetrics)
