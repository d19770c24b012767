"""``POST /api/v1/prompts/analytics`` (seed 004): latency, cost and score of one call.

Answers 204 once Kafka has the event. Every bad input is ``400 invalid_request`` naming
the field (seed 004 documents 400 without a code); 401, 403, 404 ``not_found`` (prompt
or version hash not in the key's project), 413, 429 (Retry-After), 503 (Retry-After).
The idempotency key is the ``Idempotency-Key`` header or the body's ``idempotency_key``
(either, or both if they agree: two different keys for one event are a 400), carried
into the record.
"""

from __future__ import annotations

from aiohttp import web

from ingest.accept import Accepted, accept
from ingest.admission import ANALYTICS, admit
from ingest.body import IDEMPOTENCY_PARAM, idempotency_header, read_model
from ingest.context import EDGE_CONTEXT
from ingest.prepare import prepare_analytics
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
    principal = await admit(request, catalog, ctx.limiter, ANALYTICS)
    key = idempotency_header(request, ErrorKind.INVALID_REQUEST)
    body = await read_model(
        request, AnalyticsEventIn, ctx.limits.max_body_bytes, ErrorKind.INVALID_REQUEST
    )
    event = prepare_analytics(catalog, principal, body, one_key(key, body.idempotency_key))
    [outcome] = await accept(ctx, principal, [event], "analytics")
    if not isinstance(outcome, Accepted):
        raise outcome
    return web.Response(status=204)


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
