"""``POST /v1/resolve`` (seed 001): answered from the in-memory catalog, never the database."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.controlplane.test_api_harness import (
    Api,
    Tenant,
)

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


async def _resolve(api: Api, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=body)
    assert reply.status == 200, reply.body
    resolved: dict[str, Any] = reply.body
    return resolved


async def test_resolve_answers_the_documented_fields(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(
        tenant, "checkout-assistant", "Old", "Help {{customer}} with a cart of {{cart_value}}."
    )
    versions = await api.call("GET", f"/v1/prompts/{prompt['id']}/versions", tenant.key)
    latest = versions.body["versions"][0]
    body = {
        "prompt": "checkout-assistant",
        "user_id": "usr_8f3k2a",
        "context": {"customer": "Ada", "cart_value": 42.5, "locale": "en-US"},
    }
    resolved = await _resolve(api, tenant, body)
    assert resolved["prompt"] == "checkout-assistant"
    assert resolved["version"] == "v2"
    assert resolved["content"] == "Help Ada with a cart of 42.5."
    assert TIMESTAMP.fullmatch(resolved["resolved_at"])
    assert resolved["traffic_rule"] == "latest"  # never deployed: the latest version
    assert resolved["prompt_id"] == prompt["id"]
    assert resolved["version_id"] == latest["version_id"]
    assert resolved["content_hash"] == latest["content_hash"]
    assert resolved["deployment_id"] is None
    assert resolved["missing_variables"] == []


async def test_resolve_follows_the_deployment_and_is_sticky(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "split", "version one", "version two")
    deployed = await api.call(
        "POST",
        f"/v1/prompts/{prompt['id']}/deploy",
        tenant.key,
        json={
            "traffic": [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}],
            "label": "experiment-april",
        },
    )
    assert deployed.status == 201
    seen: dict[str, str] = {}
    for index in range(60):
        resolved = await _resolve(api, tenant, {"prompt": "split", "user_id": f"user-{index}"})
        assert resolved["traffic_rule"] == "experiment-april"
        assert resolved["deployment_id"] == deployed.body["deployment_id"]
        seen[f"user-{index}"] = resolved["version"]
    assert set(seen.values()) == {"v1", "v2"}
    for user, version in list(seen.items())[:10]:
        again = await _resolve(api, tenant, {"prompt": "split", "user_id": user})
        assert again["version"] == version


async def test_resolve_sees_a_deploy_at_once(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "fresh", "one", "two")
    body = {"prompt": "fresh", "user_id": "u"}
    assert (await _resolve(api, tenant, body))["version"] == "v2"
    deploy = {"traffic": [{"version": "v1", "weight": 100}]}
    await api.call("POST", "/v1/prompts/fresh/deploy", tenant.key, json=deploy)
    assert (await _resolve(api, tenant, body))["version"] == "v1"


async def test_resolve_accepts_a_prompt_id(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "by-id", "content")
    resolved = await _resolve(api, tenant, {"prompt": prompt["id"], "user_id": "u"})
    assert resolved["prompt"] == "by-id"


async def test_missing_variables_are_reported_or_refused_when_strict(
    api: Api, tenant: Tenant
) -> None:
    await api.prompt(tenant, "vars", "Hello {{name}} from {{ city }}")
    resolved = await _resolve(api, tenant, {"prompt": "vars", "user_id": "u"})
    assert resolved["content"] == "Hello {{name}} from {{ city }}"
    assert resolved["missing_variables"] == ["name", "city"]
    reply = await api.call(
        "POST",
        "/v1/resolve",
        tenant.key,
        json={"prompt": "vars", "user_id": "u", "context": {"name": "Ada"}, "strict": True},
    )
    assert reply.status == 400
    assert reply.code == "invalid_request"
    assert "city" in reply.body["error"]["message"]


@pytest.mark.parametrize("name", ["no-such-prompt", "prm_" + "0" * 32, "empty-prompt"])
async def test_a_prompt_with_nothing_to_serve_is_404(api: Api, tenant: Tenant, name: str) -> None:
    await api.prompt(tenant, "empty-prompt")
    reply = await api.call("POST", "/v1/resolve", tenant.key, json={"prompt": name, "user_id": "u"})
    assert reply.status == 404
    assert reply.code == "not_found"
    assert reply.body["error"]["field"] == "prompt"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u"}, "prompt"),
        ({"prompt": "p"}, "user_id"),
        ({"prompt": "p", "user_id": ""}, "user_id"),
        ({"prompt": "p", "user_id": 42}, "user_id"),
        ({"prompt": ["p"], "user_id": "u"}, "prompt"),
        ({"prompt": "p", "user_id": "u", "context": ["a"]}, "context"),
        ({"prompt": "p", "user_id": "u", "context": "a=b"}, "context"),
        ({"prompt": "p", "user_id": "u", "strict": "yes"}, "strict"),
    ],
)
async def test_bad_resolve_bodies_are_400(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=body)
    assert reply.status == 400
    assert reply.code == "invalid_request"
    assert reply.body["error"]["field"] == field


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b"nope"])
async def test_malformed_resolve_bodies_are_400(api: Api, tenant: Tenant, raw: bytes) -> None:
    reply = await api.call("POST", "/v1/resolve", tenant.key, data=raw)
    assert reply.status == 400
    assert reply.code == "invalid_request"


async def test_resolve_never_queries_the_database(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "offline", "served from memory")
    await api.watcher.stop()  # no background polls either

    def no_database() -> AsyncSession:
        raise AssertionError("resolve opened a database session")

    api.watcher.sessions = no_database  # type: ignore[assignment]
    resolved = await _resolve(api, tenant, {"prompt": "offline", "user_id": "u"})
    assert resolved["content"] == "served from memory"
