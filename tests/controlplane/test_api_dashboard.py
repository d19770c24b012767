"""Seed 002's create and list routes under ``/dashboard/prompts``, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.controlplane.test_api_harness import (
    Api,
    Tenant,
)

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
FIELDS = {
    "id",
    "name",
    "prompt_uuid",
    "version",
    "content",
    "description",
    "is_active",
    "created_at",
}


async def _create(
    api: Api, tenant: Tenant, name: str, version: int, content: str = "text", **extra: Any
) -> dict[str, Any]:
    body = {"name": name, "version": version, "content": content} | extra
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, json=body)
    assert reply.status == 201, reply.body
    created: dict[str, Any] = reply.body
    return created


async def test_create_answers_201_with_the_version_record(api: Api, tenant: Tenant) -> None:
    body = {
        "name": "classify-intent",
        "version": 1,
        "content": "Classify the intent of: {{message}}",
        "description": "First cut",
    }
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, json=body)
    assert reply.status == 201
    created = reply.body
    assert set(created) == FIELDS
    assert uuid.UUID(created["id"]) and str(uuid.UUID(created["id"])) == created["id"]
    assert created["name"] == "classify-intent"
    assert created["version"] == 1
    assert created["content"] == "Classify the intent of: {{message}}"
    assert created["description"] == "First cut"
    assert created["is_active"] is True
    assert TIMESTAMP.fullmatch(created["created_at"])


async def test_description_is_optional(api: Api, tenant: Tenant) -> None:
    created = await _create(api, tenant, "plain", 1)
    assert created["description"] is None


async def test_an_existing_name_and_version_is_409_conflict(api: Api, tenant: Tenant) -> None:
    await _create(api, tenant, "classify-intent", 3)
    body = {"name": "classify-intent", "version": 3, "content": "other"}
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, json=body)
    assert reply.status == 409
    assert reply.code == "conflict"
    await _create(api, tenant, "another-name", 3)
    await _create(api, tenant, "classify-intent", 4)


async def test_list_is_ordered_by_name_then_newest_version(api: Api, tenant: Tenant) -> None:
    for name, version in [("beta", 1), ("alpha", 1), ("alpha", 3), ("alpha", 2), ("beta", 2)]:
        await _create(api, tenant, name, version, content=f"{name} {version}")
    reply = await api.call("GET", "/dashboard/prompts/", tenant.key)
    assert reply.status == 200
    assert [(row["name"], row["version"]) for row in reply.body] == [
        ("alpha", 3),
        ("alpha", 2),
        ("alpha", 1),
        ("beta", 2),
        ("beta", 1),
    ]
    for row in reply.body:
        assert set(row) == FIELDS
        assert row["content"] == f"{row['name']} {row['version']}"


async def test_versions_of_a_name_are_newest_first(api: Api, tenant: Tenant) -> None:
    for version in (2, 5, 1):
        await _create(api, tenant, "classify-intent", version)
    await _create(api, tenant, "unrelated", 9)
    reply = await api.call("GET", "/dashboard/prompts/classify-intent/versions", tenant.key)
    assert reply.status == 200
    assert [row["version"] for row in reply.body] == [5, 2, 1]
    assert {row["name"] for row in reply.body} == {"classify-intent"}


async def test_versions_of_an_unknown_name_is_404(api: Api, tenant: Tenant) -> None:
    reply = await api.call("GET", "/dashboard/prompts/nobody/versions", tenant.key)
    assert reply.status == 404
    assert reply.code == "not_found"


async def test_a_prompt_without_versions_lists_none(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "empty")
    reply = await api.call("GET", "/dashboard/prompts/empty/versions", tenant.key)
    assert (reply.status, reply.body) == (200, [])


async def test_is_active_means_receiving_traffic(api: Api, tenant: Tenant) -> None:
    for version in (1, 2, 3):
        await _create(api, tenant, "served", version)

    async def active() -> dict[int, bool]:
        reply = await api.call("GET", "/dashboard/prompts/served/versions", tenant.key)
        return {row["version"]: row["is_active"] for row in reply.body}

    assert await active() == {3: True, 2: False, 1: False}  # undeployed: the latest
    deploy = {"traffic": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}
    reply = await api.call("POST", "/v1/prompts/served/deploy", tenant.key, json=deploy)
    assert reply.status == 201
    assert await active() == {3: False, 2: True, 1: True}
    created = await _create(api, tenant, "served", 4)
    assert created["is_active"] is False  # not deployed yet: resolve does not serve it


async def test_versions_are_shared_with_the_other_families(api: Api, tenant: Tenant) -> None:
    await _create(api, tenant, "shared", 7, content="seven")
    pushed = await api.call(
        "POST", "/v1/prompts/shared/versions", tenant.key, json={"content": "8"}
    )
    assert pushed.body["version"] == "v8"
    reply = await api.call("GET", "/dashboard/prompts/shared/versions", tenant.key)
    assert [row["version"] for row in reply.body] == [8, 7]


async def test_paths_work_with_or_without_trailing_slash(api: Api, tenant: Tenant) -> None:
    body = {"name": "slashes", "version": 1, "content": "c"}
    assert (await api.call("POST", "/dashboard/prompts", tenant.key, json=body)).status == 201
    assert (await api.call("GET", "/dashboard/prompts", tenant.key)).status == 200
    path = "/dashboard/prompts/slashes/versions/"
    assert (await api.call("GET", path, tenant.key)).status == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3"}, "version"),
        ({"version": 0}, "version"),
        ({"version": -1}, "version"),
        ({"version": 2**31}, "version"),
        ({"version": 1.5}, "version"),
        ({"version": True}, "version"),
        ({"version": None}, "version"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "tab\tname"}, "name"),
        ({"content": ""}, "content"),
        ({"content": "nul\x00"}, "content"),
        ({"content": 12}, "content"),
        ({"description": 12}, "description"),
    ],
)
async def test_invalid_fields_are_422_validation_error(
    api: Api, tenant: Tenant, change: dict[str, Any], field: str
) -> None:
    body = {"name": "valid", "version": 1, "content": "c"} | change
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, json=body)
    assert reply.status == 422
    assert reply.code == "validation_error"
    assert reply.body["error"]["field"] == field


@pytest.mark.parametrize("missing", ["name", "version", "content"])
async def test_missing_fields_are_422(api: Api, tenant: Tenant, missing: str) -> None:
    body = {"name": "valid", "version": 1, "content": "c"}
    del body[missing]
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, json=body)
    assert reply.status == 422
    assert reply.body["error"]["field"] == missing


@pytest.mark.parametrize("raw", [b"", b"{", b"[]"])
async def test_malformed_bodies_are_400_invalid_request(
    api: Api, tenant: Tenant, raw: bytes
) -> None:
    reply = await api.call("POST", "/dashboard/prompts/", tenant.key, data=raw)
    assert reply.status == 400
    assert reply.code == "invalid_request"
