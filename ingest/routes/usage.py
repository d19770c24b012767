"""``POST /dashboard/prompts/usage`` (seed 002): link a trace (and span) to a prompt version.

Answers ``201 {"status": "recorded"}`` once Kafka has the link; the seed says the body
is "always 'recorded' on success" and the call is idempotent, so a repeated call gets
the same answer and the warehouse keeps one link per (prompt, version, trace, span),
the link's natural key, carried as its idempotency key. Errors follow the dashboard
family: 400 ``invalid_request`` (body not a JSON object), 422 ``validation_error`` (a
field is wrong; ``field`` names it), 401, 403, 404 ``not_found`` (no prompt of that
name or id, or no such version, in the key's project), 413, 429 (Retry-After), 503.
"""

from __future__ import annotations

from aiohttp import web

from ingest.accept import Accepted, accept
from ingest.admission import USAGE, admit
from ingest.answer_models import UsageRecorded
from ingest.body import IDEMPOTENCY_PARAM, idempotency_header, read_model
from ingest.context import EDGE_CONTEXT
from ingest.prepare import prepare_usage
from promptline.http.bodies import json_response
from promptline.http.errors import ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from schemas.usage import UsageIn

PATH = "/dashboard/prompts/usage"
RECORDED = {"status": "recorded"}


async def post_usage(request: web.Request) -> web.Response:
    """Validate, produce, and answer 201 ``recorded``."""
    ctx = request.app[EDGE_CONTEXT]
    catalog = ctx.catalog.current
    principal = await admit(request, catalog, ctx.limiter, USAGE)
    idempotency_header(request, ErrorKind.VALIDATION)  # checked; the natural key wins
    body = await read_model(request, UsageIn, ctx.limits.max_body_bytes, ErrorKind.VALIDATION)
    event = prepare_usage(catalog, principal, body)
    [outcome] = await accept(ctx, principal, [event], "usage")
    if not isinstance(outcome, Accepted):
        raise outcome
    return json_response(RECORDED, status=201)


OPERATION = Operation(
    summary="Link a trace to a prompt version",
    description="Which trace (and span) used version `version` of prompt `name`; idempotent: "
    "the warehouse keeps one link per (prompt, version, trace, span).",
    tag="dashboard (seed 002)",
    scope="ingest",
    body=UsageIn,
    answers={201: Answer("Recorded.", UsageRecorded)},
    errors=(ErrorKind.VALIDATION, ErrorKind.NOT_FOUND, ErrorKind.UNAVAILABLE),
    parameters=(IDEMPOTENCY_PARAM,),
)


def add_routes(app: web.Application) -> None:
    """Register the usage route (with and without a trailing slash, like its family)."""
    served_routes(app).add_post(PATH, post_usage, OPERATION)
    served_routes(app).add_post(PATH + "/", post_usage, OPERATION)
