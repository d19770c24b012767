"""``POST /api/v1/prompts/:prompt_id/signals`` (seed 000): a thumbs up or down.

``:prompt_id`` is the prompt's ``pmt_<hex>`` id (or ``prm_<hex>``, ``tmpl-<uuid>``, the
bare UUID, or the prompt's name). Answers ``201 {"data": {"id", "value", "created_at"}}``
once Kafka has the signal. Errors: 401 ``unauthorized``, 403 ``forbidden`` (no
``ingest`` scope), 404 ``not_found`` (no such prompt in the key's project), 400
``invalid_request`` (body not a JSON object), 422 ``validation_error`` (a field is
wrong; ``field`` names it), 413 ``payload_too_large``, 429 ``rate_limited`` (monthly
signal limit, or the key's request rate; both with Retry-After), 503 ``unavailable``.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from aiohttp import web

from ingest.accept import Accepted, accept
from ingest.admission import SIGNALS, admit
from ingest.answer_models import SignalAccepted
from ingest.body import IDEMPOTENCY_PARAM, idempotency_header, read_model
from ingest.context import EDGE_CONTEXT
from ingest.prepare import prepare_signal
from promptline.http.bodies import json_response
from promptline.http.errors import ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from schemas.records import SignalRecord
from schemas.signals import SignalIn

PATH = "/api/v1/prompts/{prompt_id}/signals"


def iso_millis(moment: datetime) -> str:
    """``2026-02-19T14:30:00.123Z``: UTC, milliseconds, as the record's ``received_at``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def signal_data(record: SignalRecord) -> dict[str, object]:
    """Seed 000's ``data`` object for an accepted signal."""
    return {
        "id": record.signal_id,
        "value": record.value,
        "created_at": iso_millis(record.received_at),
    }


async def post_signal(request: web.Request) -> web.Response:
    """Validate, count against the monthly quota, produce, and answer 201."""
    ctx = request.app[EDGE_CONTEXT]
    catalog = ctx.catalog.current
    principal = await admit(request, catalog, ctx.limiter, SIGNALS)
    key = idempotency_header(request, ErrorKind.VALIDATION)
    body = await read_model(request, SignalIn, ctx.limits.max_body_bytes, ErrorKind.VALIDATION)
    event = prepare_signal(catalog, principal, request.match_info["prompt_id"], body, key)
    [outcome] = await accept(ctx, principal, [event], "signal")
    if not isinstance(outcome, Accepted):
        raise outcome
    return json_response({"data": signal_data(cast(SignalRecord, outcome.record))}, status=201)


OPERATION = Operation(
    summary="Record a feedback signal",
    description="A thumbs up or down on one of the prompt's outputs; 201 once Kafka has it. "
    "Counts against the organisation's monthly signal quota (429 with Retry-After over it).",
    tag="edge (seeds 000, 004)",
    scope="ingest",
    body=SignalIn,
    answers={201: Answer("Accepted.", SignalAccepted)},
    errors=(ErrorKind.VALIDATION, ErrorKind.NOT_FOUND, ErrorKind.UNAVAILABLE),
    parameters=(IDEMPOTENCY_PARAM,),
)


def add_routes(app: web.Application) -> None:
    """Register the signals route."""
    served_routes(app).add_post(PATH, post_signal, OPERATION)
