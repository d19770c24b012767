"""``POST /api/v1/prompts/analytics`` (seed 004): latency, cost and score of one call."""

from __future__ import annotations

from aiohttp import web

from controlplane.store.models import Scope
from ingest.context import EDGE_CONTEXT
from ingest.ids import new_event_id, received_now
from ingest.producer import ProduceFailed
from promptline.http.auth import authenticate
from promptline.http.bodies import parse_model, read_json
from promptline.http.errors import ApiError, ErrorKind
from promptline.topics import EventKind, topic_name
from schemas.analytics import AnalyticsEventIn
from schemas.records import AnalyticsRecord

RETRY_AFTER_SECONDS = 1.0


async def post_analytics(request: web.Request) -> web.Response:
    """Validate, authorize, produce, and answer 204 only once Kafka has the record."""
    ctx = request.app[EDGE_CONTEXT]
    catalog = ctx.catalog.current
    principal = authenticate(request, catalog, Scope.INGEST)
    event = parse_model(AnalyticsEventIn, await read_json(request), ErrorKind.INVALID_REQUEST)
    prompt = catalog.prompt(principal.project_id, event.prompt_id)
    if prompt is None:
        raise ApiError(ErrorKind.NOT_FOUND, "Prompt not found in your project.", field="prompt_id")
    if event.version_hash not in prompt.versions_by_hash:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt.name}' has no version with hash {event.version_hash}.",
            field="version_hash",
        )
    record = AnalyticsRecord(
        event_id=new_event_id(),
        received_at=received_now(),
        org_id=principal.org_id,
        project_id=principal.project_id,
        prompt_id=event.prompt_id,
        version_hash=event.version_hash,
        latency_ms=event.latency_ms,
        cost_usd=event.cost_usd,
        score=event.score,
    )
    try:
        await ctx.producer.produce(
            topic_name(ctx.topic_prefix, EventKind.ANALYTICS),
            key=str(event.prompt_id).encode(),
            value=record.to_bytes(),
        )
    except ProduceFailed as error:
        raise ApiError(
            ErrorKind.UNAVAILABLE,
            "The event store is unavailable; retry later.",
            retry_after=RETRY_AFTER_SECONDS,
        ) from error
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Register the analytics route."""
    app.router.add_post("/api/v1/prompts/analytics", post_analytics)
