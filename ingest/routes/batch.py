"""``POST /api/v1/events/batch``: many signals, usage links, analytics events and exposures.

Body ``{"events": [{"type": "signal" | "usage" | "analytics" | "exposure", ...fields},
...]}``, at most ``edge_batch_max_events`` events (500 by default). Answer
``{"results": [...], "accepted": n, "rejected": m}`` with one result per event in
order: ``{"index", "type", "status", "event_id"[, "id"]}`` when accepted (``status`` and
``id`` as the event's own route would answer: 201 and the integer id for a signal, 201
for a usage link, 204 for analytics; 204 for an exposure, which has no route of its own)
or ``{"index", "type", "status", "error": {...}}``.
Status 200 when every event was accepted, 207 Multi-Status otherwise (with Retry-After
when some result is worth retrying). Errors of the request as a whole (nothing
accepted): 400 ``invalid_request`` (not a JSON object), 422 ``validation_error`` (no
``events`` list, or an empty one), 413 ``payload_too_large`` (too many bytes or
events), 401, 403, 429 (request rate, Retry-After). Idempotency inside a batch (fallback
keys from the ``Idempotency-Key`` header, repeated keys) is ``ingest.batch_keys``.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from controlplane.catalog import PromptEntry
from ingest.accept import Accepted, Outcome, accept
from ingest.admission import BATCH, admit
from ingest.answer_models import BatchAnswer
from ingest.batch import event_type, prepare_event, result, retry_seconds
from ingest.batch_keys import FallbackKeys, first_occurrences
from ingest.body import IDEMPOTENCY_HEADER, idempotency_header, parse_object, read_limited
from ingest.context import EDGE_CONTEXT
from ingest.prepare import Prepared
from promptline.http.bodies import json_response, parse_model
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation, Param
from promptline.http.routes import served_routes
from schemas.batch import BatchIn

PATH = "/api/v1/events/batch"


async def post_batch(request: web.Request) -> web.Response:
    """Judge every event, accept the good ones together, and answer one result each."""
    ctx = request.app[EDGE_CONTEXT]
    catalog = ctx.catalog.current
    principal = await admit(request, catalog, ctx.limiter, BATCH)
    batch_key = idempotency_header(request, ErrorKind.VALIDATION)
    data = parse_object(await read_limited(request, ctx.limits.batch_max_bytes))
    events = data.get("events")
    limit = ctx.limits.batch_max_events
    if isinstance(events, list) and len(events) > limit:
        raise ApiError(
            ErrorKind.PAYLOAD_TOO_LARGE,
            f"events: at most {limit} events per batch, got {len(events)}; split the batch.",
            field="events",
        )
    items = parse_model(BatchIn, data, ErrorKind.VALIDATION).events
    ctx.metrics.batch_events.observe(len(items))

    outcomes: list[Outcome | None] = [None] * len(items)
    kinds = [event_type(item) for item in items]
    fallback_keys = FallbackKeys(batch_key)
    prepared: list[Prepared] = []
    positions: list[int] = []
    prompts: dict[str, PromptEntry] = {}
    for index, item in enumerate(items):
        try:
            prepared.append(
                prepare_event(
                    catalog, principal, index, item, fallback_keys, ctx.exposures, prompts
                )
            )
            positions.append(index)
        except ApiError as error:
            outcomes[index] = error
            ctx.metrics.observe_events(kinds[index] or "unknown", error.kind.value)
    # A repeat of an event earlier in the batch (same identity) is not accepted again:
    # it shares the first one's outcome, so it costs no quota and no second record.
    firsts = first_occurrences(prepared)
    unique = [position for position, first in enumerate(firsts) if first == position]
    decided = await accept(ctx, principal, [prepared[p] for p in unique], "batch")
    outcome_of = dict(zip(unique, decided, strict=True))
    for position, first in enumerate(firsts):
        outcomes[positions[position]] = outcome_of[first]
        if first != position:
            ctx.metrics.observe_events(prepared[position].kind.value, "repeat")
    return _answer(list(zip(kinds, cast("list[Outcome]", outcomes), strict=True)))


def _answer(outcomes: list[tuple[str | None, Outcome]]) -> web.Response:
    """200 if every event was accepted, else 207; one result per event, in order."""
    results = [result(index, kind, outcome) for index, (kind, outcome) in enumerate(outcomes)]
    accepted = sum(isinstance(outcome, Accepted) for _kind, outcome in outcomes)
    body: dict[str, Any] = {
        "results": results,
        "accepted": accepted,
        "rejected": len(outcomes) - accepted,
    }
    response = json_response(body, status=200 if accepted == len(outcomes) else 207)
    waits = [
        outcome.retry_after
        for _kind, outcome in outcomes
        if isinstance(outcome, ApiError) and outcome.retry_after is not None
    ]
    if waits:
        response.headers["Retry-After"] = str(retry_seconds(min(waits)))
    return response


OPERATION = Operation(
    summary="Send many events at once",
    description="Signals, usage links, analytics events and exposures, each judged on its own: "
    "200 when every event was accepted, 207 with one result per event otherwise. 422 when "
    "`events` is missing or empty; 413 past the batch's byte or event limit. An exposure is "
    "a version a client resolved on its own side and served to a user: `prompt_id` (any "
    'reference), `version` (`4` or `"v4"`), `content_hash`? (must be that version\'s), '
    "`deployment_id`? (`dep_<32 hex>` or UUID; absent if never deployed), `traffic_rule`, "
    "`split`? (true when the weighted split chose; default false), `user_id` (stored as "
    "resolve stores it: a keyed hash by default), `resolved_at`? (ISO 8601, default now; "
    "within the exposure retention and at most a day ahead), `idempotency_key`?; a bad "
    "field is a 422 result naming it. Exposures cost no signal quota.",
    tag="edge (seeds 000, 004)",
    scope="ingest",
    body=BatchIn,
    body_description='`{"events": [{"type": "signal" | "usage" | "analytics" | "exposure", '
    "...that route's fields}]}`; a signal names its prompt in `prompt_id`; an exposure's "
    "fields are in the description.",
    answers={
        200: Answer("Every event accepted.", BatchAnswer),
        207: Answer(
            "Some events refused; Retry-After when one is worth retrying.",
            BatchAnswer,
            headers={"Retry-After": "Whole seconds to wait before retrying those events."},
        ),
    },
    errors=(ErrorKind.VALIDATION,),
    parameters=(
        Param(
            IDEMPOTENCY_HEADER,
            "The batch's key: each event without its own key gets one derived from it.",
            location="header",
        ),
    ),
)


def add_routes(app: web.Application) -> None:
    """Register the batch route."""
    served_routes(app).add_post(PATH, post_batch, OPERATION)
