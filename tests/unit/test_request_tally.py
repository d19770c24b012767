"""The request tally exports exactly what prometheus_client's own metrics would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ingest.metrics import LATENCY_BUCKETS
from ingest.request_tally import RequestTally


def test_tally_matches_prometheus_client_sample_for_sample() -> None:
    reference = CollectorRegistry()
    requests = Counter(
        "promptline_http_requests",
        "HTTP requests answered, by route pattern, method and status.",
        ("route", "method", "status"),
        registry=reference,
    )
    durations = Histogram(
        "promptline_http_request_duration_seconds",
        "Time from handler start to response, by route pattern.",
        ("route",),
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    errors = Counter(
        "promptline_http_errors",
        "Error responses by route pattern and canonical error code.",
        ("route", "code"),
        registry=reference,
    )
    ours = CollectorRegistry()
    tally = RequestTally(LATENCY_BUCKETS)
    ours.register(tally)

    rng = random.Random(3)
    # Values on the bucket bounds too: a bound belongs to its own bucket (le).
    values = [*LATENCY_BUCKETS, 0.0, 11.0, *(rng.expovariate(50) for _ in range(500))]
    for index, seconds in enumerate(values):
        route = ("/v1/resolve", "/api/v1/prompts/analytics")[index % 2]
        status = (200, 429, 204)[index % 3]
        requests.labels(route, "POST", status).inc()
        durations.labels(route).observe(seconds)
        tally.request(route, "POST", status, seconds)
        if status == 429:
            errors.labels(route, "rate_limited").inc()
            tally.error(route, "rate_limited")

    def lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return sorted(line for line in text.splitlines() if not line.startswith("#"))

    assert lines(ours) == [line for line in lines(reference) if "_created" not in line]
