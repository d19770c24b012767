"""The edge's route handlers, one module per route; :func:`add_routes` registers them all."""

from __future__ import annotations

from aiohttp import web

from ingest.cors import CorsPolicy, add_cors
from ingest.routes import analytics, batch, metrics, signals, usage

EVENT_PATHS = (signals.PATH, usage.PATH, usage.PATH + "/", analytics.PATH, batch.PATH)
"""The routes browsers may send events to (CORS); not /metrics."""
ANY_ORIGIN = CorsPolicy.parse("*")


def add_routes(app: web.Application, cors: CorsPolicy = ANY_ORIGIN) -> None:
    """Register every edge route: seeds 000, 002 (usage) and 004, the batch, /metrics.

    The event routes answer CORS preflights and carry CORS headers per ``cors``.
    """
    signals.add_routes(app)
    usage.add_routes(app)
    analytics.add_routes(app)
    batch.add_routes(app)
    metrics.add_routes(app)
    add_cors(app, cors, EVENT_PATHS)
