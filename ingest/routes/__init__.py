"""The edge's route handlers, one module per route; :func:`add_routes` registers them all."""

from __future__ import annotations

from aiohttp import web

from ingest.routes import analytics, batch, metrics, signals, usage


def add_routes(app: web.Application) -> None:
    """Register every edge route: seeds 000, 002 (usage) and 004, the batch, /metrics."""
    signals.add_routes(app)
    usage.add_routes(app)
    analytics.add_routes(app)
    batch.add_routes(app)
    metrics.add_routes(app)
