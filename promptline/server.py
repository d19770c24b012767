"""The HTTP service: control-plane routes and the ingestion edge in one aiohttp app.

One process serves both by default (the local stack and small installs); production
can run several of them behind a load balancer, since all state is in the store and
Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import text

from compare import api as compare_api
from compare.warehouse import WAREHOUSE, Warehouse
from controlplane import api
from controlplane.api.sdk import SDK_STREAM_POLICY, StreamPolicy
from controlplane.api.webhooks import WEBHOOK_TARGETS
from controlplane.catalog import CatalogWatcher
from controlplane.exposures import NoExposures
from controlplane.store.engine import create_engine, session_factory
from controlplane.webhooks.targets import TargetPolicy
from ingest.context import EDGE_CONTEXT
from ingest.cors import CorsPolicy
from ingest.exposure_sink import KafkaExposures
from ingest.metrics import EDGE_METRICS, EdgeMetrics
from ingest.observe import serving_app
from ingest.resources import close_edge, edge_producer, open_edge
from ingest.routes import add_routes as add_edge_routes
from promptline.http import document_routes
from promptline.http.bodies import json_response
from promptline.http.families import dialect_for
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from promptline.logs import quiet_undecodable_bodies
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from ui import routes as ui_routes

SETTINGS = web.AppKey("settings", Settings)
READY_TIMEOUT_SECONDS = 2.0
UNREACHABLE = "unreachable"

log = logging.getLogger(__name__)


async def healthz(_request: web.Request) -> web.Response:
    """Alive: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the control-plane store and Kafka both answer.

    Unauthenticated (load balancers probe it), so a failed check says only
    ``unreachable``; what went wrong (hosts, drivers, messages) goes to the log.
    """
    ctx = request.app[EDGE_CONTEXT]
    checks: dict[str, str] = {}
    try:
        async with ctx.catalog.sessions() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), READY_TIMEOUT_SECONDS)
        checks["store"] = "ok"
    except Exception:
        log.warning("readiness: the control-plane store is unreachable", exc_info=True)
        checks["store"] = UNREACHABLE
    try:
        await asyncio.wait_for(ctx.producer.check(), READY_TIMEOUT_SECONDS)
        checks["kafka"] = "ok"
    except Exception:
        log.warning("readiness: Kafka is unreachable", exc_info=True)
        checks["kafka"] = UNREACHABLE
    ready = all(value == "ok" for value in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


HEALTHZ = Operation(
    summary="Liveness",
    description="The process answers; checks nothing else (for a load balancer's liveness probe).",
    tag="meta",
    scope=None,
    answers={200: Answer('Alive: `{"status": "ok"}`.', schema={"type": "object"})},
)
_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not ready"]},
        "checks": {
            "type": "object",
            "properties": {
                "store": {"enum": ["ok", UNREACHABLE]},
                "kafka": {"enum": ["ok", UNREACHABLE]},
            },
        },
    },
}
READYZ = Operation(
    summary="Readiness",
    description="Whether the control-plane store and Kafka both answer; what failed is logged, "
    "never shown.",
    tag="meta",
    scope=None,
    answers={
        200: Answer("Both answer.", schema=_READINESS),
        503: Answer("One of them does not: `unreachable`.", schema=_READINESS),
    },
)


def create_app(settings: Settings) -> web.Application:
    """The application with all routes; its cleanup context owns every connection.

    It also quiets aiohttp's traceback for bodies that do not decode, which are answered
    400 (``promptline.logs.UndecodableBodyFilter``), however the app is run.
    """
    quiet_undecodable_bodies()
    metrics = EdgeMetrics()
    app = serving_app(dialect_for, metrics, settings.edge_access_log)
    app[SETTINGS] = settings
    app[EDGE_METRICS] = metrics
    app.cleanup_ctx.append(_resources)
    served_routes(app).add_get("/healthz", healthz, HEALTHZ)
    served_routes(app).add_get("/readyz", readyz, READYZ)
    add_edge_routes(app, CorsPolicy.parse(settings.edge_cors_origins))
    api.add_routes(app)
    app[WEBHOOK_TARGETS] = TargetPolicy.of(settings)
    app[SDK_STREAM_POLICY] = StreamPolicy.of(settings)
    compare_api.add_routes(app)
    ui_routes.add_routes(app, settings)
    document_routes.add_routes(app)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    catalog = CatalogWatcher(session_factory(engine))
    producer = edge_producer(settings)
    limiter = await api.RateLimiter.open(settings.redis_url)
    await catalog.start()
    # Connects in the background: the control plane serves while Kafka is unreachable,
    # the edge answers 503 and /readyz says so until the producer gets through.
    await producer.start()
    app[EDGE_CONTEXT] = edge = await open_edge(
        settings, catalog, producer, limiter, app[EDGE_METRICS]
    )
    exposures = KafkaExposures(
        producer,
        topic_name(settings.kafka_topic_prefix, EventKind.EXPOSURE),
        app[EDGE_METRICS],
        hashed=settings.exposure_unit_ids == "hashed",
        queue_max=settings.exposure_queue_max,
    )
    if settings.exposures_enabled:
        exposures.start()
    app[api.CONTROL_PLANE] = api.ControlPlane(
        catalog=catalog,
        limiter=limiter,
        exposures=exposures if settings.exposures_enabled else NoExposures(),
    )
    app[WAREHOUSE] = warehouse = Warehouse(settings)  # ClickHouse clients, made on first use
    try:
        yield
    finally:
        # Order matters for graceful shutdown: the runner has stopped accepting and
        # drained in-flight requests before this runs; flush Kafka, then let go.
        await exposures.stop(settings.edge_ack_timeout_seconds)
        await producer.stop()
        await close_edge(edge)  # after the flush: no signal id is issued past this point
        await limiter.close()
        await warehouse.close()
        await catalog.stop()
        await engine.dispose()
