"""A project's webhooks (issue 15), in seed 001's family: ``/v1/webhooks``.

- ``POST /v1/webhooks`` registers a URL (``deploy`` scope: webhooks report what goes
  live, so whoever may change that decides where it is told); 201 with the signing
  secret, shown this once.
- ``GET /v1/webhooks`` lists the project's webhooks (``read``), each with its newest
  delivery, so a key holder sees failures without an administrator.
- ``DELETE /v1/webhooks/:webhook_id`` deletes one (``deploy``); 204. Another project's
  webhook, or an unknown id, is 404: other projects' webhooks do not exist.

Bodies follow the family: a malformed one (a missing ``url``, an unknown event type, a
field of the wrong JSON type) is ``400 invalid_request`` naming the field; a well-formed
URL the service will not send to (not http or https, with credentials, a private,
loopback, link-local or reserved address, a host that does not resolve) is
``422 validation_error`` with ``field`` ``url``, as a well-formed split not summing to 100
is a 422. The address rule and its setting are in ``controlplane.webhooks.targets``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.answer_models import WebhookCreated, WebhookList
from controlplane.api.context import admit
from controlplane.api.presenters import iso
from controlplane.api.promptlab import OptionalText
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.ids import IdShape, decode, encode
from controlplane.store.models import Delivery, Scope, Webhook
from controlplane.transactions import write
from controlplane.webhooks.events import ALL_EVENTS
from controlplane.webhooks.registry import (
    MAX_WEBHOOKS_PER_PROJECT,
    TooManyWebhooks,
    create_webhook,
    delete_webhook,
    latest_deliveries,
    live_webhooks,
)
from controlplane.webhooks.targets import MAX_URL_LENGTH, TargetPolicy, TargetRefused, check_target
from promptline.http.bodies import json_response, parse_model, read_json
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes

LIST_WEBHOOKS = Endpoint("GET /v1/webhooks", LimitClass.READ)
CREATE_WEBHOOK = Endpoint("POST /v1/webhooks", LimitClass.WRITE)
DELETE_WEBHOOK = Endpoint("DELETE /v1/webhooks/:webhook_id", LimitClass.WRITE)

WEBHOOK_TARGETS = web.AppKey("webhook_targets", TargetPolicy)
"""The app's address rule (``promptline.server`` sets it from the settings)."""
DEFAULT_TARGETS = TargetPolicy()
"""The rule of an app that sets none: private addresses refused."""

EventName = Literal[
    "*",
    "deployment.created",
    "deployment.rolled_back",
    "rollout.started",
    "rollout.step",
    "rollout.rolled_back",
    "rollout.completed",
    "rollout.held",
    "rollout.stopped",
    "rollout.sample_ratio_mismatch",
]
"""An event type, or ``*`` for all of them (``controlplane.webhooks.events``)."""


def _all_if_null(value: Any) -> Any:
    """``null`` or no ``events`` subscribes to every type."""
    return [ALL_EVENTS] if value is None else value


class WebhookIn(BaseModel):
    """``url``: where events are POSTed; ``events``: the types to send (default: all,
    ``["*"]``, including types added later); ``description``: a note for people."""

    model_config = ConfigDict(strict=True, extra="ignore")

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
    events: Annotated[
        list[EventName], Field(min_length=1, max_length=50), BeforeValidator(_all_if_null)
    ] = ["*"]
    description: OptionalText = ""


async def get_webhooks(request: web.Request) -> web.Response:
    """The project's webhooks, each with its newest delivery."""
    caller = await admit(request, Scope.READ, LIST_WEBHOOKS)
    async with caller.plane.sessions() as session:
        hooks = await live_webhooks(session, caller.principal.project_id)
        latest = await latest_deliveries(session, [hook.id for hook in hooks])
    return json_response(
        {"webhooks": [_webhook(hook, latest.get(hook.id)) for hook in hooks], "total": len(hooks)}
    )


async def post_webhook(request: web.Request) -> web.Response:
    """Register a webhook; its secret is in this answer only."""
    caller = await admit(request, Scope.DEPLOY, CREATE_WEBHOOK)
    body = parse_model(WebhookIn, await read_json(request), ErrorKind.INVALID_REQUEST)
    policy = request.app.get(WEBHOOK_TARGETS, DEFAULT_TARGETS)
    try:
        await check_target(body.url, policy)
    except TargetRefused as error:
        raise ApiError(ErrorKind.VALIDATION, f"url: {error}", field="url") from error
    named = dict.fromkeys(str(event) for event in body.events)  # in order, once each
    events = [ALL_EVENTS] if ALL_EVENTS in named else list(named)

    async def work(session: AsyncSession) -> Webhook:
        try:
            return await create_webhook(
                session, caller.principal.project_id, body.url, events, body.description
            )
        except TooManyWebhooks as error:
            raise ApiError(ErrorKind.CONFLICT, str(error)) from error

    hook = await write(caller.plane.sessions, work)
    return json_response(_webhook(hook, None) | {"secret": hook.secret}, status=201)


async def delete_webhook_route(request: web.Request) -> web.Response:
    """Delete a webhook: nothing more is sent to it, what was pending is given up."""
    caller = await admit(request, Scope.DEPLOY, DELETE_WEBHOOK)
    ref = request.match_info["webhook_id"]
    webhook_id = decode(ref, IdShape.WEBHOOK)

    async def work(session: AsyncSession) -> bool:
        if webhook_id is None:
            return False
        return await delete_webhook(session, caller.principal.project_id, webhook_id)

    if not await write(caller.plane.sessions, work):
        raise ApiError(ErrorKind.NOT_FOUND, f"Webhook '{ref[:80]}' not found.")
    return web.Response(status=204)


def _webhook(hook: Webhook, last: Delivery | None) -> dict[str, Any]:
    return {
        "webhook_id": encode(IdShape.WEBHOOK, hook.id),
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "created_at": iso(hook.created_at),
        "last_delivery": _delivery(last) if last is not None else None,
    }


def _delivery(row: Delivery) -> dict[str, Any]:
    settled = row.delivered_at or row.failed_at
    status = "delivered" if row.delivered_at else "failed" if row.failed_at else "pending"
    return {
        "delivery_id": encode(IdShape.DELIVERY, row.id),
        "event_type": row.event_type,
        "status": status,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.next_attempt_at else None,
        "settled_at": iso(settled) if settled else None,
        "last_status": row.last_status,
        "last_error": row.last_error,
    }


TAG = "webhooks"
LIST_OP = Operation(
    summary="List webhooks",
    description="The key's project's webhooks, oldest first, each with its newest delivery "
    "(pending, delivered or failed, with the last HTTP status and error). Secrets are never "
    "shown.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The webhooks.", WebhookList)},
)
CREATE_OP = Operation(
    summary="Register a webhook",
    description="Every event of the chosen types (default: all) is POSTed to `url` as JSON, "
    "signed with the secret in this answer, which is never shown again. A URL that is not "
    "http(s), carries credentials, or points at a private, loopback, link-local or "
    "reserved address (or a name resolving to one, or not resolving) is 422 "
    f"`validation_error`; a project has at most {MAX_WEBHOOKS_PER_PROJECT} (409).",
    tag=TAG,
    scope=Scope.DEPLOY,
    body=WebhookIn,
    answers={201: Answer("Registered.", WebhookCreated)},
    errors=(ErrorKind.VALIDATION, ErrorKind.CONFLICT),
)
DELETE_OP = Operation(
    summary="Delete a webhook",
    description="Nothing more is sent to it; deliveries still pending are given up.",
    tag=TAG,
    scope=Scope.DEPLOY,
    answers={204: Answer("Deleted.")},
    errors=(ErrorKind.NOT_FOUND,),
    path_parameters={"webhook_id": "The webhook's id (`whk_<hex>`) or its bare UUID."},
)


def add_routes(app: web.Application) -> None:
    """Register the webhook routes."""
    router = served_routes(app)
    router.add_get("/v1/webhooks", get_webhooks, LIST_OP)
    router.add_post("/v1/webhooks", post_webhook, CREATE_OP)
    router.add_route("DELETE", "/v1/webhooks/{webhook_id}", delete_webhook_route, DELETE_OP)
