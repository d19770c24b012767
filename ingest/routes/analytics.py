"""``POST /api/v1/prompts/analytics`` (seed 004): latency, cost and score of one call.

Answers 204 once Kafka has the event. Every bad input is ``400 invalid_request`` naming
the field (seed 004 documents 400 without a code); 401, 403, 404 ``not_found`` (prompt
or version hash not in the key's project), 413, 429 (Retry-After), 503 (Retry-After).
The idempotency key is the ``Idempotency-Key`` header or the body's ``idempotency_key``
(either, or both if they agree: two different keys for one event are a 400), carried
into the record.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ingest.accept import accept_analytics
from ingest.admission import ANALYTICS, admit_now
from ingest.analytics_body import AnalyticsBody, checked_analytics
from ingest.body import (
    IDEMPOTENCY_PARAM,
    arrived_body,
    idempotency_header,
    parse_object,
    read_limited,
)
from ingest.context import EDGE_CONTEXT
from ingest.prepare import prepare_analytics
from promptline.http.answers import no_content
from promptline.http.bodies import parse_model
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from schemas.analytics import AnalyticsEventIn

PATH = "/api/v1/prompts/analytics"


def one_key(header: str | None, body: str | None) -> str | None:
    """The event's key from the header or the body; 400 if they name different keys."""
    if header is not None and body is not None and header != body:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "idempotency_key: differs from the Idempotency-Key header; send one key.",
            field="idempotency_key",
        )
    return header if header is not None else body


async def post_analytics(request: web.Request) -> web.Response:
    """Validate, authorize, produce, and answer 204 only once Kafka has the record."""
    ctx = request.app[EDGE_CONTEXT]
    catalog = ctx.catalog.current
    principal, counted = admit_now(request, catalog, ctx.limiter, ANALYTICS)
    if not counted:
        await ctx.limiter.check(principal, ANALYTICS)
    key = idempotency_header(request, ErrorKind.INVALID_REQUEST)
    limit = ctx.limits.max_body_bytes
    raw = arrived_body(request, limit)
    if raw is None:
        raw = await read_limited(request, limit)
    body = analytics_body(parse_object(raw))
    event = prepare_analytics(catalog, principal, body, one_key(key, body.idempotency_key))
    await accept_analytics(ctx, principal, event)
    return no_content()


def analytics_body(data: dict[str, Any]) -> AnalyticsBody | AnalyticsEventIn:
    """The body's fields: checked by hand when usual, else by the model (its 400s)."""
    checked = checked_analytics(data)
    if checked is not None:
        return checked
    return parse_model(AnalyticsEventIn, data, ErrorKind.INVALID_REQUEST)


OPERATION = Operation(
    summary="Record an analytics event",
    description="Latency, cost and score of one LLM call with a prompt version (by content "
    "hash); 204 once Kafka has it. Every bad input is 400 naming the field. `prompt_id` "
    "takes any reference to the prompt (seed 004 shows its UUID; its other ids and its name "
    "work too).",
    tag="edge (seeds 000, 004)",
    scope="ingest",
    body=AnalyticsEventIn,
    answers={204: Answer("Accepted: Kafka has the event.")},
    errors=(ErrorKind.NOT_FOUND, ErrorKind.UNAVAILABLE),
    parameters=(IDEMPOTENCY_PARAM,),
)


def add_routes(app: web.Application) -> None:
    """Register the analytics route."""
    served_routes(app).add_post(PATH, post_analytics, OPERATION)
