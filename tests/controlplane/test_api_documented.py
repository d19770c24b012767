"""Real control-plane answers match what /openapi.json documents: status and body schema."""

from __future__ import annotations

from typing import Any

from promptline.http.openapi import build_document
from promptline.server import create_app
from promptline.settings import Settings
from tests.controlplane.test_api_harness import Api, Reply, Tenant
from tests.support.documented import assert_documented

DOCUMENT = build_document(create_app(Settings(database_url="sqlite+aiosqlite:///unused.db")))


def documented(reply: Reply, method: str, pattern: str) -> None:
    """Fail unless ``reply`` is one of the operation's documented answers, body and all."""
    assert_documented(DOCUMENT, method, pattern, reply.status, reply.body)


async def test_every_control_plane_answer_is_documented(api: Api, tenant: Tenant) -> None:
    async def call(method: str, path: str, pattern: str, **kwargs: Any) -> Reply:
        key = kwargs.pop("key", tenant.key)
        reply = await api.call(method, path, key, **kwargs)
        documented(reply, method, pattern)
        return reply

    one = "/v1/prompts/{prompt_id}"
    assert (
        await call("POST", "/v1/prompts", "/v1/prompts", json={"name": "doc-bot"})
    ).status == 201
    assert (
        await call("POST", "/v1/prompts", "/v1/prompts", json={"name": "doc-bot"})
    ).status == 409
    assert (await call("POST", "/v1/prompts", "/v1/prompts", json={"name": ""})).status == 400
    for content in ("Hi {{who}}.", "Hello {{who}}."):
        pushed = await call(
            "POST", "/v1/prompts/doc-bot/versions", one + "/versions", json={"content": content}
        )
        assert pushed.status == 201
    assert (await call("GET", "/v1/prompts", "/v1/prompts")).status == 200
    assert (await call("GET", "/v1/prompts/doc-bot", one)).status == 200
    assert (await call("GET", "/v1/prompts/nothing", one)).status == 404
    assert (await call("GET", "/v1/prompts/doc-bot/versions", one + "/versions")).status == 200
    shown = await call("GET", "/v1/prompts/doc-bot/versions/v1", one + "/versions/{version}")
    assert shown.status == 200
    deploy = one + "/deploy"
    for traffic in ([{"version": "v1", "weight": 100}], [{"version": "v2", "weight": 100}]):
        deployed = await call(
            "POST", "/v1/prompts/doc-bot/deploy", deploy, json={"traffic": traffic}
        )
        assert deployed.status == 201
    bad = {"traffic": [{"version": "v1", "weight": 50}]}
    assert (await call("POST", "/v1/prompts/doc-bot/deploy", deploy, json=bad)).status == 422
    resolve = {"prompt": "doc-bot", "user_id": "usr_1", "context": {"who": "Ada"}}
    assert (await call("POST", "/v1/resolve", "/v1/resolve", json=resolve)).status == 200
    unknown = resolve | {"prompt": "nothing"}
    assert (await call("POST", "/v1/resolve", "/v1/resolve", json=unknown)).status == 404
    assert (await call("POST", "/v1/resolve", "/v1/resolve", json={})).status == 400
    assert (await call("POST", "/v1/resolve", "/v1/resolve", json=resolve, key=None)).status == 401
    assert (await call("POST", "/v1/prompts/doc-bot/rollback", one + "/rollback")).status == 200
    assert (await call("POST", "/v1/prompts/doc-bot/rollback", one + "/rollback")).status == 409
    assert (
        await call("GET", "/v1/prompts/doc-bot/deployments", one + "/deployments")
    ).status == 200
    reader = await api.key(tenant, ["read"])
    refused = await call("POST", "/v1/prompts", "/v1/prompts", json={"name": "x"}, key=reader)
    assert refused.status == 403


async def test_every_dashboard_and_template_answer_is_documented(api: Api, tenant: Tenant) -> None:
    async def call(method: str, path: str, pattern: str, **kwargs: Any) -> Reply:
        reply = await api.call(method, path, tenant.key, **kwargs)
        documented(reply, method, pattern)
        return reply

    board = "/dashboard/prompts"
    created = {"name": "dash", "version": 1, "content": "x", "description": "first"}
    assert (await call("POST", board, board, json=created)).status == 201
    assert (await call("POST", board, board, json=created)).status == 409
    assert (await call("POST", board, board, json=created | {"version": "2"})).status == 422
    assert (await call("GET", board + "/", board + "/")).status == 200
    named = board + "/{name}/versions"
    assert (await call("GET", board + "/dash/versions", named)).status == 200
    assert (await call("GET", board + "/nothing/versions", named)).status == 404

    templates = "/api/v1/prompt-templates"
    pushed = {"name": "tpl", "content": "Hi {{who}}", "commitMessage": "first"}
    assert (await call("POST", templates, templates, json=pushed)).status == 201
    assert (await call("POST", templates, templates, json={"name": "tpl"})).status == 400
    assert (await call("GET", templates, templates)).status == 200
    assert (await call("GET", templates, templates, params={"name": "tpl"})).status == 200
    one = {"name": "tpl", "version": "1"}
    assert (await call("GET", templates, templates, params=one)).status == 200
    assert (await call("GET", templates, templates, params={"version": "1"})).status == 400
    assert (await call("GET", templates, templates, params={"name": "nope"})).status == 404
