"""The webhook routes and the outbox rows the deploy routes write, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from typing import Any, get_args

import pytest
from sqlalchemy import select

from controlplane.api import webhooks as webhook_routes
from controlplane.ids import IdShape, encode
from controlplane.store.models import Delivery, Webhook
from controlplane.transactions import write
from controlplane.webhooks.events import ALL_EVENTS, DEPLOYMENT_CREATED, EVENT_TYPES
from controlplane.webhooks.outbox import enqueue
from controlplane.webhooks.targets import TargetPolicy
from promptline.http.openapi import build_document
from promptline.server import create_app
from promptline.settings import Settings
from tests.controlplane.test_api_harness import Api, Reply, Tenant
from tests.support.documented import assert_documented

DOCUMENT = build_document(create_app(Settings(database_url="sqlite+aiosqlite:///unused.db")))
PUBLIC_URL = "https://1.1.1.1/hooks/promptline"
"""A public address given literally: registering it needs no DNS (the tests run offline)."""
WEBHOOK_ID = re.compile(r"whk_[0-9a-f]{32}")
SECRET = re.compile(r"whsec_[0-9a-f]{64}")


async def _call(api: Api, method: str, path: str, key: str, **kwargs: Any) -> Reply:
    """Call a route; fail unless the answer is one the API document lists for it."""
    reply = await api.call(method, path, key, **kwargs)
    pattern = "/v1/webhooks/{webhook_id}" if path.count("/") > 2 else "/v1/webhooks"
    assert_documented(DOCUMENT, method, pattern, reply.status, reply.body)
    return reply


async def _register(api: Api, tenant: Tenant, **body: Any) -> dict[str, Any]:
    reply = await _call(api, "POST", "/v1/webhooks", tenant.key, json={"url": PUBLIC_URL} | body)
    assert reply.status == 201, reply.body
    created: dict[str, Any] = reply.body
    return created


async def _deliveries(api: Api, webhook_id: str) -> list[Delivery]:
    hook = uuid.UUID(webhook_id.removeprefix("whk_"))
    async with api.sessions() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.webhook_id == hook).order_by(Delivery.created_at)
        )
        return list(rows)


def test_the_body_model_names_every_event_type() -> None:
    assert set(get_args(webhook_routes.EventName)) == {ALL_EVENTS, *EVENT_TYPES}


# --- routes ----------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_never_listed(api: Api, tenant: Tenant) -> None:
    created = await _register(api, tenant, description="Ops channel")
    assert WEBHOOK_ID.fullmatch(created["webhook_id"])
    assert SECRET.fullmatch(created["secret"])
    assert created["url"] == PUBLIC_URL
    assert created["events"] == [ALL_EVENTS]
    assert created["description"] == "Ops channel"
    assert created["last_delivery"] is None

    listed = await _call(api, "GET", "/v1/webhooks", tenant.key)
    assert listed.status == 200
    assert listed.body["total"] == 1
    [shown] = listed.body["webhooks"]
    assert "secret" not in shown
    assert created["secret"] not in str(listed.body)
    assert shown == {key: value for key, value in created.items() if key != "secret"}


async def test_event_types_are_kept_once_each_and_a_star_means_all(
    api: Api, tenant: Tenant
) -> None:
    chosen = ["rollout.rolled_back", "rollout.step", "rollout.rolled_back"]
    assert (await _register(api, tenant, events=chosen))["events"] == chosen[:2]
    assert (await _register(api, tenant, events=["rollout.step", "*"]))["events"] == ["*"]
    assert (await _register(api, tenant, events=None))["events"] == ["*"]


async def test_delete_hides_the_webhook_and_a_second_delete_is_404(
    api: Api, tenant: Tenant
) -> None:
    created = await _register(api, tenant)
    path = f"/v1/webhooks/{created['webhook_id']}"
    deleted = await _call(api, "DELETE", path, tenant.key)
    assert (deleted.status, deleted.body) == (204, None)
    assert (await _call(api, "GET", "/v1/webhooks", tenant.key)).body["total"] == 0
    again = await _call(api, "DELETE", path, tenant.key)
    assert (again.status, again.code) == (404, "not_found")


@pytest.mark.parametrize(
    "webhook_id", [encode(IdShape.WEBHOOK, uuid.uuid4()), "whk_nothex", "nothing", "x" * 500]
)
async def test_an_unknown_webhook_is_404(api: Api, tenant: Tenant, webhook_id: str) -> None:
    reply = await _call(api, "DELETE", f"/v1/webhooks/{webhook_id}", tenant.key)
    assert (reply.status, reply.code) == (404, "not_found")


async def test_another_projects_webhook_does_not_exist(api: Api, tenant: Tenant) -> None:
    created = await _register(api, tenant)
    other = await api.tenant()
    assert (await _call(api, "GET", "/v1/webhooks", other.key)).body["total"] == 0
    for spelled in (created["webhook_id"], created["webhook_id"].removeprefix("whk_")):
        reply = await _call(api, "DELETE", f"/v1/webhooks/{spelled}", other.key)
        assert (reply.status, reply.code) == (404, "not_found")
    assert (await _call(api, "GET", "/v1/webhooks", tenant.key)).body["total"] == 1


async def test_changing_webhooks_needs_the_deploy_scope(api: Api, tenant: Tenant) -> None:
    created = await _register(api, tenant)
    reader = await api.key(tenant, ["read", "write", "ingest"])
    refused = await _call(api, "POST", "/v1/webhooks", reader, json={"url": PUBLIC_URL})
    assert (refused.status, refused.code) == (403, "forbidden")
    path = f"/v1/webhooks/{created['webhook_id']}"
    assert (await _call(api, "DELETE", path, reader)).status == 403
    assert (await _call(api, "GET", "/v1/webhooks", reader)).body["total"] == 1
    assert (await _call(api, "GET", "/v1/webhooks", "pl_sk_nothing")).status == 401


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://2130706433/hook",
        "ftp://1.1.1.1/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:secret@1.1.1.1/hook",
        "https:///hook",
        "https://1.1.1.1:0/hook",
        "https://1.1.1.1/has space",
        "not a url",
        "https://no-such-host.invalid/hook",
    ],
)
async def test_urls_the_service_will_not_send_to_are_422(
    api: Api, tenant: Tenant, url: str
) -> None:
    reply = await _call(api, "POST", "/v1/webhooks", tenant.key, json={"url": url})
    assert (reply.status, reply.code) == (422, "validation_error"), reply.body
    assert reply.body["error"]["field"] == "url"
    assert (await _call(api, "GET", "/v1/webhooks", tenant.key)).body["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": ""}, "url"),
        ({"url": "https://1.1.1.1/" + "x" * 2000}, "url"),
        ({"url": PUBLIC_URL, "events": ["deployment.deleted"]}, "events.0"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": "deployment.created"}, "events"),
        ({"url": PUBLIC_URL, "description": 7}, "description"),
        ({"url": PUBLIC_URL, "description": "a\x00b"}, "description"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    reply = await _call(api, "POST", "/v1/webhooks", tenant.key, json=body)
    assert (reply.status, reply.code) == (400, "invalid_request"), reply.body
    assert reply.body["error"]["field"] == field


async def test_private_targets_are_taken_when_the_setting_allows_them(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_routes, "DEFAULT_TARGETS", TargetPolicy(allow_private=True))
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.0.0.7/x"):
        assert (await _register(api, tenant, url=url))["url"] == url
    refused = await _call(api, "POST", "/v1/webhooks", tenant.key, json={"url": "ftp://10.0.0.7"})
    assert refused.status == 422


def test_the_server_takes_the_rule_from_its_settings() -> None:
    for allowed in (False, True):
        settings = Settings(
            database_url="sqlite+aiosqlite:///unused.db", webhook_allow_private_targets=allowed
        )
        assert create_app(settings)[webhook_routes.WEBHOOK_TARGETS].allow_private is allowed


# --- the outbox ------------------------------------------------------------------------


async def test_deploy_and_rollback_write_their_events_in_the_outbox(
    api: Api, tenant: Tenant
) -> None:
    every = await _register(api, tenant)
    rollouts_only = await _register(api, tenant, events=["rollout.rolled_back"])
    await api.prompt(tenant, "hooked-bot", "Hi {{who}}.", "Hello {{who}}.")
    answers = []
    for version in ("v1", "v2"):
        traffic = {"traffic": [{"version": version, "weight": 100}]}
        deployed = await api.call("POST", "/v1/prompts/hooked-bot/deploy", tenant.key, json=traffic)
        assert deployed.status == 201
        answers.append(deployed.body)
    rolled = await api.call("POST", "/v1/prompts/hooked-bot/rollback", tenant.key)
    assert rolled.status == 200

    rows = await _deliveries(api, every["webhook_id"])
    assert [row.event_type for row in rows] == [
        "deployment.created",
        "deployment.created",
        "deployment.rolled_back",
    ]
    assert [row.payload for row in rows] == [*answers, rolled.body]
    assert all(row.attempts == 0 and row.next_attempt_at is not None for row in rows)
    assert await _deliveries(api, rollouts_only["webhook_id"]) == []

    listed = await api.call("GET", "/v1/webhooks", tenant.key)
    last = {hook["webhook_id"]: hook["last_delivery"] for hook in listed.body["webhooks"]}
    assert last[rollouts_only["webhook_id"]] is None
    assert last[every["webhook_id"]] | {"created_at": "-"} == {
        "delivery_id": encode(IdShape.DELIVERY, rows[-1].id),
        "event_type": "deployment.rolled_back",
        "status": "pending",
        "attempts": 0,
        "created_at": "-",
        "next_attempt_at": last[every["webhook_id"]]["next_attempt_at"],
        "settled_at": None,
        "last_status": None,
        "last_error": None,
    }


async def test_a_transaction_that_fails_leaves_no_event(api: Api, tenant: Tenant) -> None:
    created = await _register(api, tenant)

    class Refused(Exception):
        pass

    async def work(session: Any) -> None:
        assert await enqueue(session, tenant.project_id, DEPLOYMENT_CREATED, {"x": 1}) == 1
        raise Refused

    with pytest.raises(Refused):
        await write(api.sessions, work)
    assert await _deliveries(api, created["webhook_id"]) == []


async def test_a_deleted_webhook_gets_no_events_and_gives_up_its_pending_ones(
    api: Api, tenant: Tenant
) -> None:
    created = await _register(api, tenant)
    async with api.sessions() as session, session.begin():
        await enqueue(session, tenant.project_id, DEPLOYMENT_CREATED, {"n": 1})
    path = f"/v1/webhooks/{created['webhook_id']}"
    assert (await api.call("DELETE", path, tenant.key)).status == 204
    async with api.sessions() as session, session.begin():
        assert await enqueue(session, tenant.project_id, DEPLOYMENT_CREATED, {"n": 2}) == 0
    [row] = await _deliveries(api, created["webhook_id"])
    assert (row.next_attempt_at, row.last_error) == (None, "webhook deleted")
    assert row.failed_at is not None
    async with api.sessions() as session:  # soft-deleted: the row and its history stay
        hook = await session.get(Webhook, uuid.UUID(created["webhook_id"].removeprefix("whk_")))
    assert hook is not None and hook.deleted_at is not None


async def test_an_unknown_event_type_is_a_programming_error(api: Api, tenant: Tenant) -> None:
    async with api.sessions() as session:
        with pytest.raises(ValueError, match="unknown webhook event type"):
            await enqueue(session, tenant.project_id, "deployment.deleted", {})
