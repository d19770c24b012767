"""The worker's small HTTP server: ``/healthz`` (200 or 503 with why) and ``/metrics``.

Served on ``worker_http_port`` when it is not 0. Both answers first note the consumer's
latest high-water marks in :class:`Progress`, so that records waiting at the broker count as
waiting even while the worker has not read them (it may be held on an earlier block).
"""

from __future__ import annotations

from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import CONTENT_TYPE_LATEST

from promptline.http.bodies import json_response
from promptline.settings import Settings
from workers.coordinator import WorkerStats
from workers.health import assess
from workers.metrics import WorkerMetrics
from workers.progress import Progress

SHUTDOWN_SECONDS = 0.5


class WorkerStatus:
    """What the two routes read: the worker's progress, counters and consumer."""

    def __init__(
        self,
        progress: Progress,
        stats: WorkerStats,
        consumer: AIOKafkaConsumer,
        metrics: WorkerMetrics,
        stall_seconds: float,
    ) -> None:
        self._progress = progress
        self._stats = stats
        self._consumer = consumer
        self._metrics = metrics
        self._stall_seconds = stall_seconds

    def note_highwaters(self) -> None:
        """Copy the consumer's high-water marks (of its last fetch) into the progress."""
        assigned = self._consumer.assignment()
        for tp in list(self._progress.partitions):
            if tp in assigned:
                self._progress.highwater(tp, self._consumer.highwater(tp))

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 with the counters while healthy; 503 with the reason, hold and partitions."""
        self.note_highwaters()
        health = assess(self._progress, self._stall_seconds)
        body = {**health.as_dict(), **self._stats.as_dict()}
        return json_response(body, status=200 if health.healthy else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        """The worker's Prometheus metrics in the text exposition format."""
        self.note_highwaters()
        response = web.Response(body=await self._metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


async def serve_status(settings: Settings, status: WorkerStatus) -> web.AppRunner | None:
    """Start the server on ``worker_http_port``; None when it is 0 (no server)."""
    if not settings.worker_http_port:
        return None
    app = web.Application()
    app.router.add_get("/healthz", status.healthz)
    app.router.add_get("/metrics", status.metrics)
    # Its answers take no time: a stopping worker does not wait long for one in flight.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, settings.listen_host, settings.worker_http_port).start()
    return runner
