"""Seed 003's ``/api/v1/prompt-templates``, with its upper-case error codes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.controlplane.test_api_harness import (
    Api,
    Tenant,
)

PATH = "/api/v1/prompt-templates"
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
TEMPLATE_ID = re.compile(r"tmpl-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VERSION_ID = re.compile(r"ver-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def _push(api: Api, tenant: Tenant, **body: Any) -> dict[str, Any]:
    reply = await api.call("POST", PATH, tenant.key, json=body)
    assert reply.status == 201, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def test_push_creates_then_auto_increments(api: Api, tenant: Tenant) -> None:
    first = await _push(
        api,
        tenant,
        name="customer-support",
        content="You are a support agent for {{company_name}}.",
        description="Main support agent prompt",
        commitMessage="First",
    )
    assert set(first) == {"templateId", "templateName", "prompt_uuid", "versionId", "version"}
    assert first["templateId"] == f"tmpl-{first['prompt_uuid']}"
    assert TEMPLATE_ID.fullmatch(first["templateId"])
    assert VERSION_ID.fullmatch(first["versionId"])
    assert (first["templateName"], first["version"]) == ("customer-support", 1)
    second = await _push(
        api,
        tenant,
        name="customer-support",
        content="You are an empathetic agent for {{company_name}}. The customer is {{customer}}.",
        variables=["company_name", "customer_name"],
        description="ignored after creation",
        commitMessage="Added empathy",
    )
    assert second["templateId"] == first["templateId"]
    assert second["version"] == 2
    assert second["versionId"] != first["versionId"]

    reply = await api.call("GET", PATH, tenant.key, params={"name": "customer-support"})
    assert reply.status == 200
    data = reply.body["data"]
    assert data["id"] == first["templateId"]
    assert data["name"] == "customer-support"
    assert data["description"] == "Main support agent prompt"
    assert data["latestVersion"] == 2
    version = data["version"]
    assert set(version) == {"id", "version", "content", "variables", "commitMessage", "createdAt"}
    assert version["id"] == second["versionId"]
    assert version["version"] == 2
    assert version["content"].startswith("You are an empathetic agent")
    assert version["variables"] == ["company_name", "customer_name", "customer"]
    assert version["commitMessage"] == "Added empathy"
    assert TIMESTAMP.fullmatch(version["createdAt"])
    assert [v["version"] for v in data["versions"]] == [2, 1]


async def test_get_a_specific_version(api: Api, tenant: Tenant) -> None:
    first = await _push(api, tenant, name="pinned", content="one")
    await _push(api, tenant, name="pinned", content="two")
    reply = await api.call("GET", PATH, tenant.key, params={"name": "pinned", "version": "1"})
    assert reply.status == 200
    version = reply.body["data"]["version"]
    assert (version["id"], version["version"], version["content"]) == (first["versionId"], 1, "one")
    assert version["commitMessage"] is None
    assert version["variables"] == []


async def test_list_shows_every_template(api: Api, tenant: Tenant) -> None:
    await _push(api, tenant, name="b-template", content="x", description="B")
    await _push(api, tenant, name="b-template", content="y")
    await _push(api, tenant, name="a-template", content="z")
    reply = await api.call("GET", PATH, tenant.key)
    assert reply.status == 200
    data = reply.body["data"]
    assert [item["name"] for item in data] == ["a-template", "b-template"]
    for item in data:
        assert set(item) == {
            "id",
            "prompt_uuid",
            "name",
            "description",
            "latestVersion",
            "createdAt",
            "updatedAt",
        }
        assert item["id"] == f"tmpl-{item['prompt_uuid']}"
        assert TEMPLATE_ID.fullmatch(item["id"])
        assert TIMESTAMP.fullmatch(item["createdAt"]) and TIMESTAMP.fullmatch(item["updatedAt"])
    assert [(item["latestVersion"], item["description"]) for item in data] == [(1, None), (2, "B")]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "nobody"}, "name"),
        ({"name": "known", "version": "2"}, "version"),
        ({"name": "known", "version": "99999999999999999999"}, "version"),
        ({"name": "hollow"}, "version"),
    ],
)
async def test_unknown_names_and_versions_are_404_not_found(
    api: Api, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    await _push(api, tenant, name="known", content="one")
    await api.prompt(tenant, "hollow")  # a prompt with no version yet
    reply = await api.call("GET", PATH, tenant.key, params=params)
    assert reply.status == 404
    assert reply.code == "NOT_FOUND"
    assert reply.body["error"]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"version": "1"}, "version"),
        ({"name": ""}, "name"),
        ({"name": "known", "version": "abc"}, "version"),
        ({"name": "known", "version": "0"}, "version"),
        ({"name": "known", "version": "-1"}, "version"),
    ],
)
async def test_bad_queries_are_400_validation_error(
    api: Api, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    await _push(api, tenant, name="known", content="one")
    reply = await api.call("GET", PATH, tenant.key, params=params)
    assert reply.status == 400
    assert reply.code == "VALIDATION_ERROR"
    assert reply.body["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "c"}, "name"),
        ({"name": "n"}, "content"),
        ({"name": "n", "content": ""}, "content"),
        ({"name": 1, "content": "c"}, "name"),
        ({"name": "a/b", "content": "c"}, "name"),
        ({"name": "n", "content": "c", "variables": "company"}, "variables"),
        ({"name": "n", "content": "c", "variables": ["ok", 3]}, "variables.1"),
        ({"name": "n", "content": "c", "variables": ["has space"]}, "variables.0"),
        ({"name": "n", "content": "c", "commitMessage": ["x"]}, "commitMessage"),
        ({"name": "n", "content": "c", "description": "nul\x00"}, "description"),
    ],
)
async def test_bad_pushes_are_400_validation_error(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", PATH, tenant.key, json=body)
    assert reply.status == 400
    assert reply.code == "VALIDATION_ERROR"
    assert reply.body["error"]["field"] == field
    listed = await api.call("GET", PATH, tenant.key)
    assert listed.body["data"] == []


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"42"])
async def test_malformed_bodies_are_400_validation_error(
    api: Api, tenant: Tenant, raw: bytes
) -> None:
    reply = await api.call("POST", PATH, tenant.key, data=raw)
    assert reply.status == 400
    assert reply.code == "VALIDATION_ERROR"


async def test_auth_errors_use_upper_case_codes(api: Api, tenant: Tenant) -> None:
    missing = await api.call("GET", PATH)
    assert (missing.status, missing.code) == (401, "UNAUTHORIZED")
    wrong = await api.call("GET", PATH, "pl_sk_not_a_key")
    assert (wrong.status, wrong.code) == (401, "UNAUTHORIZED")
    reader = await api.key(tenant, ["read"])
    refused = await api.call("POST", PATH, reader, json={"name": "n", "content": "c"})
    assert (refused.status, refused.code) == (403, "FORBIDDEN")
    assert (await api.call("GET", PATH, reader)).status == 200


async def test_a_template_is_found_by_its_id(api: Api, tenant: Tenant) -> None:
    pushed = await _push(api, tenant, name="by-id", content="one")
    reply = await api.call("GET", PATH, tenant.key, params={"name": pushed["templateId"]})
    assert reply.status == 200
    assert reply.body["data"]["name"] == "by-id"
