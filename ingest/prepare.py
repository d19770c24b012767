"""Turning a validated body into a prepared event: its prompt found, its record's fields set.

The same functions serve the single-event routes and the batch route, so an event is
judged the same way whichever way it arrives. They raise ``ApiError`` (404 with the
field at fault) for a prompt or version the caller's project does not have.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.catalog import Catalog, Principal, PromptEntry
from controlplane.ids import IdShape, decode
from ingest.analytics_body import AnalyticsBody
from ingest.context import ExposurePolicy
from ingest.prompts import prompt_by_reference, version_by_hash, version_by_number
from promptline.http.errors import ApiError, ErrorKind
from promptline.topics import EventKind
from promptline.units import unit_id
from schemas.analytics import AnalyticsEventIn
from schemas.exposures import ExposureEventIn
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
    catalog: Catalog,
    principal: Principal,
    body: AnalyticsEventIn | AnalyticsBody,
    idempotency_key: str | None,
    prompts: dict[str, PromptEntry] | None = None,
) -> Prepared:
    """An analytics event about a version (by content hash) of a prompt (any id, or its name).

    ``prompts`` keeps the prompts found by reference during one request (a batch's events
    mostly name the same prompt), so each reference is looked up once.
    """
    prompt = None if prompts is None else prompts.get(body.prompt_id)
    if prompt is None:
        prompt = prompt_by_reference(catalog, principal, body.prompt_id, "prompt_id")
        if prompts is not None:
            prompts[body.prompt_id] = prompt
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


EXPOSURE_AHEAD = timedelta(days=1)
"""How far ahead of the edge's clock a client's ``resolved_at`` may be (clock skew)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest hour ``exposures_hourly`` (a DateTime column) holds."""


def prepare_exposure(
    catalog: Catalog,
    principal: Principal,
    body: ExposureEventIn,
    idempotency_key: str | None,
    policy: ExposurePolicy,
) -> Prepared:
    """An exposure a client reports: its prompt and version checked, its unit id computed
    from ``user_id`` as resolve computes it, its time within the retention."""
    prompt = prompt_by_reference(catalog, principal, body.prompt_id, "prompt_id")
    version = version_by_number(prompt, body.version, "version")
    if body.content_hash is not None and body.content_hash != version.content_hash:
        raise ApiError(
            ErrorKind.VALIDATION,
            f"content_hash: is not the content hash of version {version.number}.",
            field="content_hash",
        )
    deployment = None
    if body.deployment_id is not None:
        deployment = decode(body.deployment_id, IdShape.DEPLOYMENT)
        if deployment is None:
            raise ApiError(
                ErrorKind.VALIDATION,
                "deployment_id: must be a deployment id (dep_<32 hex>) or a UUID.",
                field="deployment_id",
            )
    fields: dict[str, Any] = {
        "prompt_id": prompt.id,
        "version": version.number,
        "version_hash": version.content_hash,
        "deployment_id": deployment,
        "rule": body.traffic_rule,
        "by_split": body.split,
        "unit_id": unit_id(principal.unit_key, body.user_id, policy.hashed),
        "source": "client",
        "idempotency_key": idempotency_key,
    }
    if body.resolved_at is not None:
        fields["received_at"] = _resolved_at(body.resolved_at, policy.retention_days)
    return Prepared(EventKind.EXPOSURE, prompt.id, fields)


def _resolved_at(moment: datetime, retention_days: int) -> datetime:
    """``moment`` in UTC, or a 422 if the warehouse would not keep it (too old, or ahead)."""
    now = datetime.now(UTC)
    earliest = now - timedelta(days=retention_days) if retention_days else EPOCH
    if not earliest <= moment <= now + EXPOSURE_AHEAD:
        kept = f"the last {retention_days} days" if retention_days else "1970 onwards"
        raise ApiError(
            ErrorKind.VALIDATION,
            f"resolved_at: must be within {kept} and at most a day ahead of the server's clock.",
            field="resolved_at",
        )
    return moment.astimezone(UTC)
