"""Per-request counts and latencies in plain dicts, exported to Prometheus at scrape time.

Every answered request is counted, resolve's included, so this is on the hottest path of
the service. ``prometheus_client``'s labelled children take a lock per ``inc`` and scan
every bucket per ``observe``; here a request costs one dict lookup and a bisect, and the
work of building metric families moves to the scrape, a few times a minute. The event
loop runs one callback at a time, so nothing needs a lock. The exported families are the
ones ``prometheus_client`` would have made: ``promptline_http_requests_total``,
``promptline_http_errors_total`` and the ``promptline_http_request_duration_seconds``
histogram.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector


class _Latencies:
    """One route's histogram: per-bucket counts (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.total = 0.0


class _Series:
    """One (route, method, status): its count, and its route's histogram to add to.

    One record per key, so a request costs one dict lookup however many families it
    feeds; the histogram is shared by the route's series, as the exported one is per route.
    """

    __slots__ = ("count", "latencies")

    def __init__(self, latencies: _Latencies) -> None:
        self.count = 0
        self.latencies = latencies


class RequestTally(Collector):
    """Requests by (route, method, status), errors by (route, code), latency by route."""

    def __init__(self, latency_buckets: Sequence[float]) -> None:
        self._bounds = tuple(latency_buckets)
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._latencies: dict[str, _Latencies] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        series = self._series.get((route, method, status))
        if series is None:
            series = self._new_series(route, method, status)
        series.count += 1
        latencies = series.latencies
        latencies.counts[bisect_left(self._bounds, seconds)] += 1
        latencies.total += seconds

    def _new_series(self, route: str, method: str, status: int) -> _Series:
        latencies = self._latencies.get(route)
        if latencies is None:
            latencies = self._latencies[route] = _Latencies(len(self._bounds))
        series = self._series[(route, method, status)] = _Series(latencies)
        return series

    def error(self, route: str, code: str) -> None:
        """Count one error response by its canonical code."""
        key = (route, code)
        self._errors[key] = self._errors.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The three families, as of now."""
        requests = CounterMetricFamily(
            "promptline_http_requests",
            "HTTP requests answered, by route pattern, method and status.",
            labels=("route", "method", "status"),
        )
        for (route, method, status), series in list(self._series.items()):
            requests.add_metric((route, method, str(status)), series.count)
        errors = CounterMetricFamily(
            "promptline_http_errors",
            "Error responses by route pattern and canonical error code.",
            labels=("route", "code"),
        )
        for (route, code), count in list(self._errors.items()):
            errors.add_metric((route, code), count)
        durations = HistogramMetricFamily(
            "promptline_http_request_duration_seconds",
            "Time from handler start to response, by route pattern.",
            labels=("route",),
        )
        bounds = [_bound(bound) for bound in self._bounds] + ["+Inf"]
        for route, latencies in list(self._latencies.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, latencies.counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            durations.add_metric((route,), cumulative, latencies.total)
        yield requests
        yield errors
        yield durations


def _bound(value: float) -> str:
    """A bucket bound as ``prometheus_client`` writes it (``0.005``, ``1.0``)."""
    return repr(float(value))
