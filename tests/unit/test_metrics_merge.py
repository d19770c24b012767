"""Several processes' expositions merged as if one process had counted everything."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.metrics import EdgeMetrics
from promptline.metrics_merge import gauge, merge, render


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _process(requests: int, events: int, seconds: float, queued: float) -> str:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs done.", ("kind",), registry=registry)
    counter.labels("a").inc(requests)
    if events:
        counter.labels("b").inc(events)  # a series only this process has
    histogram = Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    histogram.observe(seconds)
    Gauge("queued", "Queued now.", registry=registry).set(queued)
    Gauge("process_start_time_seconds", "Start.", registry=registry).set(100 + requests)
    return generate_latest(registry).decode()


def test_counters_histograms_and_gauges_add_up_per_name_and_labels() -> None:
    merged = _values(render(merge([_process(3, 0, 0.05, 2), _process(4, 5, 0.5, 7)])).decode())
    assert merged[("jobs_total", (("kind", "a"),))] == 7
    assert merged[("jobs_total", (("kind", "b"),))] == 5
    assert merged[("latency_seconds_bucket", (("le", "0.1"),))] == 1
    assert merged[("latency_seconds_bucket", (("le", "1.0"),))] == 2
    assert merged[("latency_seconds_bucket", (("le", "+Inf"),))] == 2
    assert merged[("latency_seconds_count", ())] == 2
    assert merged[("latency_seconds_sum", ())] == 0.55
    assert merged[("queued", ())] == 9


def test_start_times_take_the_earliest() -> None:
    first, second = _process(3, 0, 0.05, 2), _process(4, 5, 0.5, 7)
    merged = _values(render(merge([second, first])).decode())
    assert merged[("process_start_time_seconds", ())] == 103
    created = [
        value
        for text in (first, second)
        for (name, labels), value in _values(text).items()
        if name == "jobs_created" and labels == (("kind", "a"),)
    ]
    assert merged[("jobs_created", (("kind", "a"),))] == min(created)


def test_one_process_renders_as_it_was() -> None:
    metrics = EdgeMetrics()
    metrics.observe_request("/healthz", "GET", 200, 0.003)
    metrics.observe_error("/v1/resolve", "rate_limited")
    metrics.observe_events("analytics", "accepted", 2)
    text = generate_latest(metrics.registry).decode()
    assert render(merge([text])).decode() == text


def test_the_service_metrics_of_two_processes_merge() -> None:
    one, two = EdgeMetrics(), EdgeMetrics()
    one.observe_request("/healthz", "GET", 200, 0.003)
    two.observe_request("/healthz", "GET", 200, 0.3)
    two.observe_request("/v1/resolve", "POST", 429, 0.001)
    texts = [generate_latest(metrics.registry).decode() for metrics in (one, two)]
    merged = _values(render(merge(texts)).decode())
    healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert merged[("promptline_http_requests_total", healthz)] == 2
    resolve = (("method", "POST"), ("route", "/v1/resolve"), ("status", "429"))
    assert merged[("promptline_http_requests_total", resolve)] == 1
    assert merged[("promptline_http_request_duration_seconds_count", (("route", "/healthz"),))] == 2


def test_added_gauges_render_beside_the_merged_families() -> None:
    metrics = [*merge([_process(1, 0, 0.05, 0)]), gauge("children_missing", "Missing.", 1)]
    assert _values(render(metrics).decode())[("children_missing", ())] == 1


def test_nothing_merges_to_nothing() -> None:
    assert render(merge([])) == b""
