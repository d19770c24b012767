"""Turning a validated body into a prepared event: its prompt found, its record's fields set.

The same functions serve the single-event routes and the batch route, so an event is
judged the same way whichever way it arrives. They raise ``ApiError`` (404 with the
field at fault) for a prompt or version the caller's project does not have.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from controlplane.catalog import Catalog, Principal
from ingest.prompts import prompt_by_reference, version_by_hash, version_by_number
from promptline.topics import EventKind
from schemas.analytics import AnalyticsEventIn
from schemas.signals import SignalIn
from schemas.usage import UsageIn


@dataclass(frozen=True, slots=True)
class Prepared:
    """An event ready to be stamped (id, time) and produced, keyed by its prompt."""

    kind: EventKind
    prompt_id: uuid.UUID
    fields: dict[str, Any]


def prepare_signal(
    catalog: Catalog,
    principal: Principal,
    prompt_reference: str,
    body: SignalIn,
    idempotency_key: str | None,
    prompt_field: str = "prompt_id",
) -> Prepared:
    """A signal about the prompt ``prompt_reference`` names (an id in any shape, or a name)."""
    prompt = prompt_by_reference(catalog, principal, prompt_reference, prompt_field)
    return Prepared(
        EventKind.SIGNAL,
        prompt.id,
        {
            "prompt_id": prompt.id,
            "value": body.value,
            "metadata": body.metadata,
            "idempotency_key": idempotency_key,
        },
    )


def usage_key(
    prompt_id: uuid.UUID, version: int, trace_id: uuid.UUID, span: uuid.UUID | None
) -> str:
    """A usage link's natural key, which is its idempotency key: the same link is one link."""
    return f"usage:{prompt_id}:{version}:{trace_id}:{span or ''}"


def prepare_usage(catalog: Catalog, principal: Principal, body: UsageIn) -> Prepared:
    """A usage link to version ``body.version`` of the prompt ``body.name`` names (or an id)."""
    prompt = prompt_by_reference(catalog, principal, body.name, "name")
    version = version_by_number(prompt, body.version, "version")
    return Prepared(
        EventKind.USAGE,
        prompt.id,
        {
            "prompt_id": prompt.id,
            "prompt_name": prompt.name,
            "version": version.number,
            "version_hash": version.content_hash,
            "trace_id": body.trace_id,
            "span_id": body.span_id,
            "idempotency_key": usage_key(prompt.id, version.number, body.trace_id, body.span_id),
        },
    )


def prepare_analytics(
    catalog: Catalog, principal: Principal, body: AnalyticsEventIn, idempotency_key: str | None
) -> Prepared:
    """An analytics event about a version (by content hash) of a prompt (any id, or its name)."""
    prompt = prompt_by_reference(catalog, principal, body.prompt_id, "prompt_id")
    version_by_hash(prompt, body.version_hash, "version_hash")
    return Prepared(
        EventKind.ANALYTICS,
        prompt.id,
        {
            "prompt_id": prompt.id,
            "version_hash": body.version_hash,
            "latency_ms": body.latency_ms,
            "cost_usd": body.cost_usd,
            "score": body.score,
            "idempotency_key": idempotency_key,
        },
    )
