"""Every control-plane answer that describes a prompt carries its UUID as ``prompt_uuid``.

The UUID is what the warehouse is keyed by, so an analyst copies it from any answer into
a ClickHouse query; it must be the UUID behind the answer's own ids.
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.ids import IdShape, decode
from tests.controlplane.test_api_harness import Api, Tenant

NAME = "uuid-bot"


async def _ok(api: Api, tenant: Tenant, method: str, path: str, **kwargs: Any) -> Any:
    reply = await api.call(method, path, tenant.key, **kwargs)
    assert reply.status in (200, 201), (path, reply.body)
    return reply.body


async def test_seed_001_answers_carry_the_prompt_uuid(api: Api, tenant: Tenant) -> None:
    created = await api.prompt(tenant, NAME, "First {{who}}", "Second {{who}}")
    expected = str(decode(created["id"], IdShape.PROMPT))
    assert created["prompt_uuid"] == expected
    base = f"/v1/prompts/{expected}"  # the UUID itself names the prompt too
    listed = await _ok(api, tenant, "GET", "/v1/prompts")
    versions = await _ok(api, tenant, "GET", f"{base}/versions")
    version = await _ok(api, tenant, "GET", f"{base}/versions/v1")
    pushed = await _ok(api, tenant, "POST", f"{base}/versions", json={"content": "Third"})
    traffic = {"traffic": [{"version": "v1", "weight": 100}]}
    await _ok(api, tenant, "POST", f"{base}/deploy", json=traffic)
    traffic = {"traffic": [{"version": "v2", "weight": 100}]}
    deployed = await _ok(api, tenant, "POST", f"{base}/deploy", json=traffic)
    history = await _ok(api, tenant, "GET", f"{base}/deployments")
    shown = await _ok(api, tenant, "GET", base)  # with the deployment in force
    rolled_back = await _ok(api, tenant, "POST", f"{base}/rollback")
    described = [
        shown,
        *shown["versions"],
        shown["deployment"],
        *listed["prompts"],
        *versions["versions"],
        version,
        pushed,
        deployed,
        *history["deployments"],
        rolled_back,
    ]
    assert [item["prompt_uuid"] for item in described] == [expected] * len(described)


async def test_resolve_carries_the_prompt_uuid(api: Api, tenant: Tenant) -> None:
    created = await api.prompt(tenant, NAME, "Hello")
    body = {"prompt": NAME, "user_id": "usr_1"}
    resolved = await _ok(api, tenant, "POST", "/v1/resolve", json=body)
    assert resolved["prompt_uuid"] == str(decode(created["id"], IdShape.PROMPT))


async def test_seed_002_and_003_answers_carry_the_prompt_uuid(api: Api, tenant: Tenant) -> None:
    body = {"name": NAME, "version": 1, "content": "Hi"}
    made = await _ok(api, tenant, "POST", "/dashboard/prompts/", json=body)
    pushed = await _ok(
        api, tenant, "POST", "/api/v1/prompt-templates", json={"name": NAME, "content": "Yo"}
    )
    expected = str(decode(pushed["data"]["templateId"], IdShape.TEMPLATE))
    assert uuid.UUID(expected)
    listed = await _ok(api, tenant, "GET", "/dashboard/prompts")
    named = await _ok(api, tenant, "GET", f"/dashboard/prompts/{expected}/versions")
    templates = await _ok(api, tenant, "GET", "/api/v1/prompt-templates")
    template = await _ok(api, tenant, "GET", f"/api/v1/prompt-templates?name={NAME}")
    described = [made, *listed, *named, pushed["data"], *templates["data"], template["data"]]
    assert [item["prompt_uuid"] for item in described] == [expected] * len(described)
