"""Authentication, scopes and tenant isolation on every control-plane route."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from controlplane.keys import digest
from controlplane.store.models import ApiKey
from controlplane.store.revision import bump_revision
from controlplane.tenancy import ALL_SCOPES
from tests.controlplane.test_api_harness import (
    Api,
    Reply,
    Tenant,
)

NAME = "checkout-assistant"


@dataclass(frozen=True, slots=True)
class Route:
    """A call of one route on the prompt ``NAME`` (or ``{id}``), and the scope it needs."""

    method: str
    path: str
    scope: str
    body: dict[str, Any] | None = None
    upper_case: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("POST", "/v1/resolve", "read", {"prompt": NAME, "user_id": "u"}),
    Route("GET", "/v1/prompts", "read"),
    Route("POST", "/v1/prompts", "write", {"name": "brand-new"}),
    Route("GET", "/v1/prompts/{id}", "read"),
    Route("GET", "/v1/prompts/{id}/versions", "read"),
    Route("GET", "/v1/prompts/{id}/versions/v1", "read"),
    Route("POST", "/v1/prompts/{id}/versions", "write", {"content": "new"}),
    Route(
        "POST", "/v1/prompts/{id}/deploy", "deploy", {"traffic": [{"version": 2, "weight": 100}]}
    ),
    Route("POST", "/v1/prompts/{id}/rollback", "deploy"),
    Route("GET", "/v1/prompts/{id}/deployments", "read"),
    Route("POST", "/dashboard/prompts/", "write", {"name": NAME, "version": 9, "content": "c"}),
    Route("GET", "/dashboard/prompts/", "read"),
    Route("GET", f"/dashboard/prompts/{NAME}/versions", "read"),
    Route("GET", "/api/v1/prompt-templates", "read", upper_case=True),
    Route("GET", f"/api/v1/prompt-templates?name={NAME}", "read", upper_case=True),
    Route("POST", "/api/v1/prompt-templates", "write", {"name": NAME, "content": "c"}, True),
]

PROMPT_ROUTES = [route for route in ROUTES if "{id}" in route.path or NAME in str(route.body)]


@pytest.fixture
async def owner(api: Api) -> Tenant:
    """A tenant with the prompt ``NAME`` (v1 and v2), deployed twice so rollback can work."""
    tenant = await api.tenant()
    await api.prompt(tenant, NAME, "one", "two")
    for version in ("v1", "v2"):
        body = {"traffic": [{"version": version, "weight": 100}]}
        reply = await api.call("POST", f"/v1/prompts/{NAME}/deploy", tenant.key, json=body)
        assert reply.status == 201
    return tenant


async def _send(api: Api, route: Route, key: str | None, prompt_ref: str = NAME) -> Reply:
    path = route.path.replace("{id}", prompt_ref)
    if route.body is None:
        return await api.call(route.method, path, key)
    return await api.call(route.method, path, key, json=route.body)


def _code(route: Route, code: str) -> str:
    return code.upper() if route.upper_case else code


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_a_missing_or_unknown_key_is_401(api: Api, owner: Tenant, route: Route) -> None:
    for key in (None, "pl_sk_unknown"):
        reply = await _send(api, route, key)
        assert reply.status == 401, key
        assert reply.code == _code(route, "unauthorized")
    path = route.path.replace("{id}", NAME)
    basic = await api.call(route.method, path, headers={"Authorization": "Basic abc"})
    assert basic.status == 401


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_a_key_without_the_scope_is_403(api: Api, owner: Tenant, route: Route) -> None:
    others = [scope for scope in ALL_SCOPES if scope != route.scope]
    key = await api.key(owner, others)
    reply = await _send(api, route, key)
    assert reply.status == 403
    assert reply.code == _code(route, "forbidden")
    assert route.scope in reply.body["error"]["message"]


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_a_key_with_just_the_scope_is_served(api: Api, owner: Tenant, route: Route) -> None:
    key = await api.key(owner, [route.scope])
    reply = await _send(api, route, key)
    assert reply.status in (200, 201), reply.body


async def test_a_revoked_key_is_401(api: Api, owner: Tenant) -> None:
    async with api.sessions() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.secret_sha256 == digest(owner.key))
            .values(revoked_at=datetime.now(UTC))
        )
        await bump_revision(session)
    await api.watcher.refresh()
    reply = await api.call("GET", "/v1/prompts", owner.key)
    assert (reply.status, reply.code) == (401, "unauthorized")


@pytest.mark.parametrize("route", PROMPT_ROUTES, ids=str)
async def test_another_projects_prompt_does_not_exist(
    api: Api, owner: Tenant, route: Route
) -> None:
    prompt_id = (await api.call("GET", f"/v1/prompts/{NAME}", owner.key)).body["id"]
    stranger = await api.tenant()
    if route.method == "POST" and route.path in ("/dashboard/prompts/", "/api/v1/prompt-templates"):
        # Writing the same name creates the stranger's own prompt, never touches the owner's.
        reply = await _send(api, route, stranger.key)
        assert reply.status == 201
    else:
        for ref in (NAME, prompt_id):
            reply = await _send(api, route, stranger.key, ref)
            assert reply.status == 404, (ref, reply.body)
            assert reply.code == _code(route, "not_found")
    owners_view = await api.call("GET", f"/v1/prompts/{NAME}/versions", owner.key)
    assert owners_view.body["total"] == 2


async def test_lists_show_only_the_callers_project(api: Api, owner: Tenant) -> None:
    stranger = await api.tenant()
    assert (await api.call("GET", "/v1/prompts", stranger.key)).body == {
        "prompts": [],
        "total": 0,
    }
    assert (await api.call("GET", "/dashboard/prompts/", stranger.key)).body == []
    assert (await api.call("GET", "/api/v1/prompt-templates", stranger.key)).body == {"data": []}
    own = await api.prompt(stranger, NAME, "stranger's text")
    listed = await api.call("GET", "/v1/prompts", stranger.key)
    assert [prompt["id"] for prompt in listed.body["prompts"]] == [own["id"]]
    resolved = await api.call(
        "POST", "/v1/resolve", stranger.key, json={"prompt": NAME, "user_id": "u"}
    )
    assert resolved.body["content"] == "stranger's text"
    owners = await api.call("POST", "/v1/resolve", owner.key, json={"prompt": NAME, "user_id": "u"})
    assert owners.body["content"] == "two"
