"""Judging the events of a batch one by one, and the per-event results of the answer.

Each event is validated with its own route's rules and error code (a signal's or usage
link's bad field is 422 ``validation_error``, an analytics event's is 400
``invalid_request``), so a batch result says exactly what the single route would have
said. An event without its own ``idempotency_key`` gets a key derived from the
request's ``Idempotency-Key`` header and the event's content (``ingest.batch_keys``), so
resending the batch, or only its refused events, is deduplicated event by event.
"""

from __future__ import annotations

import math
from typing import Any, cast

from pydantic import BaseModel

from controlplane.catalog import Catalog, Principal, PromptEntry
from ingest.accept import Accepted, Outcome
from ingest.analytics_body import AnalyticsBody, checked_analytics
from ingest.batch_keys import FallbackKeys
from ingest.context import ExposurePolicy
from ingest.prepare import (
    Prepared,
    prepare_analytics,
    prepare_exposure,
    prepare_signal,
    prepare_usage,
)
from promptline.http.bodies import parse_model
from promptline.http.errors import DEFAULT_DIALECT, DOCS_URL, ApiError, ErrorKind
from promptline.topics import EventKind
from schemas.batch import (
    EVENT_MODELS,
    EVENT_TYPES,
    AnalyticsBatchEventIn,
    SignalEventIn,
    UsageEventIn,
)
from schemas.exposures import ExposureEventIn
from schemas.records import SignalRecord

SUCCESS_STATUS = {
    EventKind.SIGNAL: 201,
    EventKind.USAGE: 201,
    EventKind.ANALYTICS: 204,
    EventKind.EXPOSURE: 204,
}
"""What each kind's own route answers on success; a batch result repeats it (an exposure,
which has no route of its own, is answered as an analytics event: nothing but its id)."""

_CHOICES = ", ".join(f"'{name}'" for name in EVENT_TYPES)


def event_type(item: Any) -> str | None:
    """The event's ``type`` if it is one the edge knows."""
    if isinstance(item, dict):
        value = item.get("type")
        if isinstance(value, str) and value in EVENT_MODELS:
            return value
    return None


def prepare_event(
    catalog: Catalog,
    principal: Principal,
    index: int,
    item: Any,
    fallback_keys: FallbackKeys,
    exposures: ExposurePolicy,
    prompts: dict[str, PromptEntry] | None = None,
) -> Prepared:
    """The prepared event at ``index``, or an ApiError saying what is wrong with it.

    Only a valid event without its own key takes a fallback key, so the keys of the
    valid events do not depend on which invalid ones were sent beside them.
    """
    if not isinstance(item, dict):
        raise ApiError(ErrorKind.VALIDATION, f"events.{index}: must be a JSON object.")
    kind = event_type(item)
    if kind is None:
        raise ApiError(ErrorKind.VALIDATION, f"type: must be one of {_CHOICES}.", field="type")
    body: BaseModel | AnalyticsBody | None = None
    if kind == "analytics":
        body = checked_analytics(item, in_batch=True)  # the usual shape, checked by hand
    if body is None:
        error_kind = ErrorKind.INVALID_REQUEST if kind == "analytics" else ErrorKind.VALIDATION
        body = parse_model(EVENT_MODELS[kind], item, error_kind)
    if isinstance(body, UsageEventIn):
        return prepare_usage(catalog, principal, body)  # keyed by the link itself
    own = cast(
        "SignalEventIn | AnalyticsBatchEventIn | ExposureEventIn | AnalyticsBody", body
    ).idempotency_key
    key = own if own is not None else fallback_keys.key_for(item)
    if isinstance(body, SignalEventIn):
        return prepare_signal(catalog, principal, body.prompt_id, body, key)
    if isinstance(body, ExposureEventIn):
        return prepare_exposure(catalog, principal, body, key, exposures)
    return prepare_analytics(
        catalog, principal, cast("AnalyticsBatchEventIn | AnalyticsBody", body), key, prompts
    )


def error_body(error: ApiError) -> dict[str, Any]:
    """The error envelope's inner object, plus ``retry_after`` (seconds) when retryable."""
    code = DEFAULT_DIALECT.code(error.kind)
    body: dict[str, Any] = {"code": code, "message": error.message, "docs": f"{DOCS_URL}#{code}"}
    if error.field is not None:
        body["field"] = error.field
    if error.retry_after is not None:
        body["retry_after"] = retry_seconds(error.retry_after)
    return body


def retry_seconds(retry_after: float) -> int:
    """Whole seconds to wait, at least one (as the Retry-After header says it)."""
    return max(1, math.ceil(retry_after))


def result(index: int, kind: str | None, outcome: Outcome) -> dict[str, Any]:
    """One event's entry in the answer: its status, and its ids or its error."""
    entry: dict[str, Any] = {"index": index, "type": kind}
    if isinstance(outcome, Accepted):
        record = outcome.record
        entry["status"] = SUCCESS_STATUS[outcome.kind]
        entry["event_id"] = str(outcome.event_id)
        if isinstance(record, SignalRecord):
            entry["id"] = record.signal_id
    else:
        entry["status"] = outcome.status
        entry["error"] = error_body(outcome)
    return entry
