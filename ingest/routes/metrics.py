"""``GET /metrics``: the service's Prometheus metrics, in the text exposition format.

Unauthenticated, as Prometheus scrapes expect; it shows counts and timings, never
event contents or keys. Rendering reads ``/proc`` (process metrics), so it runs in a
thread, off the event loop. A process of ``serve --processes N`` answers for the whole
group, its siblings' metrics merged in (``promptline.serve_group``).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.metrics import EDGE_METRICS
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from promptline.http.scrape import GROUP_SCRAPE

PATH = "/metrics"


async def get_metrics(request: web.Request) -> web.Response:
    """Every metric of this application's registry (of its process group's, if in one)."""
    siblings = request.app.get(GROUP_SCRAPE)
    if siblings is not None:
        body = await siblings.scrape()
    else:
        body = await asyncio.to_thread(generate_latest, request.app[EDGE_METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


METRICS = Operation(
    summary="Prometheus metrics",
    description="The service's metrics in Prometheus's text format: counts and timings, "
    "never event contents or keys.",
    tag="meta",
    scope=None,
    answers={200: Answer("The metrics.", schema={"type": "string"}, content_type="text/plain")},
)


def add_routes(app: web.Application) -> None:
    """Register the metrics route."""
    served_routes(app).add_get(PATH, get_metrics, METRICS)
