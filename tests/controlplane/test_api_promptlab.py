"""Seed 001's prompt, version, deploy, rollback and history routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import pytest

from tests.controlplane.test_api_harness import (
    Api,
    Tenant,
)

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
PRM_ID = re.compile(r"prm_[0-9a-f]{32}")
VER_ID = re.compile(r"ver_[0-9a-f]{32}")
DEP_ID = re.compile(r"dep_[0-9a-f]{32}")


def _sha256(content: str) -> str:
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


async def _deploy(api: Api, tenant: Tenant, prompt: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.call("POST", f"/v1/prompts/{prompt}/deploy", tenant.key, json=body)
    assert reply.status == 201, reply.body
    deployed: dict[str, Any] = reply.body
    return deployed


def _all_to(version: str) -> dict[str, Any]:
    return {"traffic": [{"version": version, "weight": 100}]}


# --- prompts ---------------------------------------------------------------------------


async def test_create_prompt_answers_201_with_an_empty_prompt(api: Api, tenant: Tenant) -> None:
    reply = await api.call(
        "POST",
        "/v1/prompts",
        tenant.key,
        json={"name": "checkout-assistant", "description": "Guides checkout"},
    )
    assert reply.status == 201
    body = reply.body
    assert PRM_ID.fullmatch(body["id"])
    assert body["name"] == "checkout-assistant"
    assert body["description"] == "Guides checkout"
    assert body["active_version"] is None
    assert body["version_count"] == 0
    assert TIMESTAMP.fullmatch(body["created_at"]) and TIMESTAMP.fullmatch(body["updated_at"])


async def test_create_prompt_with_a_taken_name_is_409_conflict(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "support-bot")
    reply = await api.call("POST", "/v1/prompts", tenant.key, json={"name": "support-bot"})
    assert reply.status == 409
    assert reply.code == "conflict"
    assert reply.body["error"]["field"] == "name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": " padded "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\x00"}, "name"),
        ({"name": "ok", "description": ["not", "text"]}, "description"),
    ],
)
async def test_create_prompt_rejects_bad_fields_with_400(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", "/v1/prompts", tenant.key, json=body)
    assert reply.status == 400
    assert reply.code == "invalid_request"
    assert reply.body["error"]["field"] == field


async def test_list_prompts_shows_active_version_count_and_total(api: Api, tenant: Tenant) -> None:
    split = await api.prompt(tenant, "b-split", "one", "two", "three")
    await api.prompt(tenant, "a-undeployed", "first", "second")
    await api.prompt(tenant, "c-empty")
    await _deploy(
        api,
        tenant,
        split["id"],
        {"traffic": [{"version": "v1", "weight": 30}, {"version": "v2", "weight": 70}]},
    )
    reply = await api.call("GET", "/v1/prompts", tenant.key)
    assert reply.status == 200
    assert reply.body["total"] == 3
    listed = {prompt["name"]: prompt for prompt in reply.body["prompts"]}
    assert [prompt["name"] for prompt in reply.body["prompts"]] == [
        "a-undeployed",
        "b-split",
        "c-empty",
    ]
    assert listed["b-split"]["active_version"] == "v2"  # the largest share
    assert listed["b-split"]["version_count"] == 3
    assert listed["b-split"]["id"] == split["id"]
    assert listed["a-undeployed"]["active_version"] == "v2"  # what resolve serves: the latest
    assert listed["c-empty"]["active_version"] is None
    assert listed["c-empty"]["version_count"] == 0
    for prompt in reply.body["prompts"]:
        assert set(prompt) >= {"id", "name", "active_version", "version_count", "updated_at"}
        assert TIMESTAMP.fullmatch(prompt["updated_at"])


async def test_get_prompt_shows_versions_newest_first_and_the_deployment(
    api: Api, tenant: Tenant
) -> None:
    prompt = await api.prompt(tenant, "detail", "one", "two")
    reply = await api.call("GET", f"/v1/prompts/{prompt['id']}", tenant.key)
    assert reply.status == 200
    assert [v["version"] for v in reply.body["versions"]] == ["v2", "v1"]
    assert reply.body["deployment"] is None
    deployed = await _deploy(api, tenant, "detail", _all_to("v1"))
    reply = await api.call("GET", "/v1/prompts/detail", tenant.key)
    assert reply.body["deployment"] == deployed
    assert reply.body["active_version"] == "v1"


# --- versions --------------------------------------------------------------------------


async def test_create_version_answers_the_documented_fields(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "checkout-assistant", "first")
    content = "You are a helpful checkout assistant for {{store}}. Be concise."
    message = "Remove product suggestion — A/B test showed no uplift"
    reply = await api.call(
        "POST",
        f"/v1/prompts/{prompt['id']}/versions",
        tenant.key,
        json={"content": content, "message": message},
    )
    assert reply.status == 201
    body = reply.body
    assert VER_ID.fullmatch(body["version_id"])
    assert body["version"] == "v2"
    assert body["prompt_id"] == prompt["id"]
    assert body["content_hash"] == _sha256(content)
    assert body["message"] == message
    assert re.fullmatch(r"key_[0-9a-f]{32}", body["created_by"])
    assert TIMESTAMP.fullmatch(body["created_at"])
    assert body["variables"] == ["store"]


async def test_versions_are_numbered_in_order_and_listed_newest_first(
    api: Api, tenant: Tenant
) -> None:
    prompt = await api.prompt(tenant, "numbered", "a", "b", "c")
    reply = await api.call("GET", f"/v1/prompts/{prompt['id']}/versions", tenant.key)
    assert reply.status == 200
    assert reply.body["total"] == 3
    assert [v["version"] for v in reply.body["versions"]] == ["v3", "v2", "v1"]
    assert [v["content_hash"] for v in reply.body["versions"]] == [
        _sha256("c"),
        _sha256("b"),
        _sha256("a"),
    ]


async def test_a_prompt_is_found_by_id_uuid_other_family_ids_and_name(
    api: Api, tenant: Tenant
) -> None:
    prompt = await api.prompt(tenant, "many-names")
    raw = uuid.UUID(prompt["id"].removeprefix("prm_"))
    refs = [prompt["id"], str(raw), f"pmt_{raw.hex}", f"tmpl-{raw}", "many-names"]
    for number, ref in enumerate(refs, 1):
        reply = await api.call(
            "POST", f"/v1/prompts/{ref}/versions", tenant.key, json={"content": f"c{number}"}
        )
        assert reply.status == 201, (ref, reply.body)
        assert reply.body["prompt_id"] == prompt["id"]
        assert reply.body["version"] == f"v{number}"


async def test_a_version_is_found_by_number_label_hash_and_id(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "lookup", "first text", "second text")
    listed = await api.call("GET", "/v1/prompts/lookup/versions", tenant.key)
    first = listed.body["versions"][1]
    raw = uuid.UUID(first["version_id"].removeprefix("ver_"))
    for ref in ("1", "v1", "V1", _sha256("first text"), first["version_id"], str(raw)):
        reply = await api.call("GET", f"/v1/prompts/{prompt['id']}/versions/{ref}", tenant.key)
        assert reply.status == 200, ref
        assert reply.body == first | {"content": "first text"}


@pytest.mark.parametrize(
    "ref", ["v3", "0", "banana", "99999999999999", "v2147483648", "sha256:" + "0" * 64]
)
async def test_an_unknown_or_malformed_version_is_404(api: Api, tenant: Tenant, ref: str) -> None:
    await api.prompt(tenant, "few", "one", "two")
    reply = await api.call("GET", f"/v1/prompts/few/versions/{ref}", tenant.key)
    assert reply.status == 404
    assert reply.code == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": 5}, "content"),
        ({"content": "x\x00y"}, "content"),
        ({"content": "ok", "message": 3}, "message"),
        ({"content": "ok", "variables": "name"}, "variables"),
        ({"content": "ok", "variables": ["not a name"]}, "variables.0"),
    ],
)
async def test_create_version_rejects_bad_fields_with_400(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    await api.prompt(tenant, "strict")
    reply = await api.call("POST", "/v1/prompts/strict/versions", tenant.key, json=body)
    assert reply.status == 400
    assert reply.code == "invalid_request"
    assert reply.body["error"]["field"] == field


@pytest.mark.parametrize("raw", [b"", b"{oops", b"[]", b'"text"', b"null"])
async def test_malformed_bodies_are_400_invalid_request(
    api: Api, tenant: Tenant, raw: bytes
) -> None:
    await api.prompt(tenant, "malformed", "one")
    for path in ("/v1/prompts", "/v1/prompts/malformed/versions", "/v1/prompts/malformed/deploy"):
        reply = await api.call("POST", path, tenant.key, data=raw)
        assert reply.status == 400, path
        assert reply.code == "invalid_request"
        assert reply.body["error"]["message"]


@pytest.mark.parametrize(
    "ref", ["prm_" + "0" * 32, str(uuid.uuid4()), "nope", "nul%00byte", "x" * 300]
)
async def test_unknown_prompts_are_404_on_every_route(api: Api, tenant: Tenant, ref: str) -> None:
    calls = [
        ("GET", f"/v1/prompts/{ref}", None),
        ("GET", f"/v1/prompts/{ref}/versions", None),
        ("GET", f"/v1/prompts/{ref}/versions/v1", None),
        ("POST", f"/v1/prompts/{ref}/versions", {"content": "x"}),
        ("POST", f"/v1/prompts/{ref}/deploy", _all_to("v1")),
        ("POST", f"/v1/prompts/{ref}/rollback", None),
        ("GET", f"/v1/prompts/{ref}/deployments", None),
    ]
    for method, path, body in calls:
        if body is None:
            reply = await api.call(method, path, tenant.key)
        else:
            reply = await api.call(method, path, tenant.key, json=body)
        assert reply.status == 404, (method, path, reply.body)
        assert reply.code == "not_found"


# --- deploy ----------------------------------------------------------------------------


async def test_deploy_answers_the_documented_fields(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "canary", "v-one", "v-two")
    body = {
        "traffic": [{"version": 1, "weight": 90}, {"version": _sha256("v-two"), "weight": 10}],
        "label": "canary-v2-10pct",
    }
    reply = await api.call("POST", f"/v1/prompts/{prompt['id']}/deploy", tenant.key, json=body)
    assert reply.status == 201
    deployed = reply.body
    assert DEP_ID.fullmatch(deployed["deployment_id"])
    assert deployed["prompt_id"] == prompt["id"]
    assert deployed["label"] == "canary-v2-10pct"
    assert deployed["traffic"] == [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]
    assert TIMESTAMP.fullmatch(deployed["deployed_at"])
    assert re.fullmatch(r"key_[0-9a-f]{32}", deployed["deployed_by"])
    assert deployed["rules"] == []
    assert deployed["rolled_back_to"] is None


async def test_weights_not_summing_to_100_are_422_weight_mismatch(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "weights", "one", "two")
    body = {"traffic": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 5}]}
    reply = await api.call("POST", "/v1/prompts/weights/deploy", tenant.key, json=body)
    assert reply.status == 422
    assert reply.body["error"]["code"] == "weight_mismatch"
    assert reply.body["error"]["message"] == "Traffic weights must sum to 100. Got 95."
    history = await api.call("GET", "/v1/prompts/weights/deployments", tenant.key)
    assert history.body["deployments"] == []


async def test_deploying_an_unknown_version_is_404(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "two-versions", "one", "two")
    for ref in ("v3", 7, "sha256:" + "f" * 64):
        body = {"traffic": [{"version": "v1", "weight": 50}, {"version": ref, "weight": 50}]}
        reply = await api.call("POST", "/v1/prompts/two-versions/deploy", tenant.key, json=body)
        assert reply.status == 404, ref
        assert reply.code == "not_found"
        assert reply.body["error"]["field"] == "traffic[1].version"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"traffic": "v1"},
        {"traffic": [{"version": "v1"}]},
        {"traffic": [{"version": "v1", "weight": "100"}]},
        {"traffic": [{"version": "v1", "weight": 100.0}]},
        {"traffic": [{"version": "v1", "weight": True}]},
        {"traffic": [{"version": "v1", "weight": 150}, {"version": "v2", "weight": -50}]},
        {"traffic": [{"version": "v1", "weight": 50}, {"version": "1", "weight": 50}]},
        {"traffic": [{"version": "first", "weight": 100}]},
        {"traffic": [{"version": "v1", "weight": 10**30}]},
        {"traffic": [{"version": "v1", "weight": 100}], "label": 7},
        {"traffic": [{"version": "v1", "weight": 100}], "label": "x" * 201},
        {"traffic": [{"version": "v1", "weight": 100}], "rules": {"name": "not a list"}},
        {"traffic": [{"version": "v1", "weight": 100}], "rules": [{"name": "no traffic"}]},
    ],
)
async def test_bad_deploy_bodies_are_400_invalid_request(
    api: Api, tenant: Tenant, body: dict[str, Any]
) -> None:
    await api.prompt(tenant, "bad-deploys", "one", "two")
    reply = await api.call("POST", "/v1/prompts/bad-deploys/deploy", tenant.key, json=body)
    assert reply.status == 400, reply.body
    assert reply.code == "invalid_request"
    assert reply.body["error"]["message"]


async def test_deploy_passes_targeting_rules_through_validated(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "targeted", "everyone", "germans")
    rule = {
        "name": "de-users",
        "when": [{"attribute": "locale", "op": "==", "value": "de-DE"}],
        "traffic": [{"version": "v2", "weight": 100}],
    }
    deployed = await _deploy(api, tenant, "targeted", _all_to("v1") | {"rules": [rule]})
    assert deployed["rules"] == [
        {
            "name": "de-users",
            "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
            "traffic": [{"version": "v2", "weight": 100}],
        }
    ]
    german = {"prompt": "targeted", "user_id": "u1", "context": {"locale": "de-DE"}}
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=german)
    assert (reply.body["version"], reply.body["traffic_rule"]) == ("v2", "de-users")
    other = {"prompt": "targeted", "user_id": "u1", "context": {"locale": "fr-FR"}}
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=other)
    assert reply.body["version"] == "v1"

    bad_rule = rule | {"traffic": [{"version": "v2", "weight": 60}]}
    reply = await api.call(
        "POST",
        "/v1/prompts/targeted/deploy",
        tenant.key,
        json=_all_to("v1") | {"rules": [bad_rule]},
    )
    assert reply.status == 422
    assert reply.code == "weight_mismatch"


# --- rollback and history --------------------------------------------------------------


async def test_rollback_returns_all_traffic_to_the_last_stable_deployment(
    api: Api, tenant: Tenant
) -> None:
    prompt = await api.prompt(tenant, "rollback", "one", "two", "three")
    first = await _deploy(api, tenant, "rollback", _all_to("v1"))
    second = await _deploy(api, tenant, "rollback", _all_to("v2") | {"label": "all-v2"})
    await _deploy(
        api,
        tenant,
        "rollback",
        {"traffic": [{"version": "v2", "weight": 50}, {"version": "v3", "weight": 50}]},
    )

    reply = await api.call("POST", f"/v1/prompts/{prompt['id']}/rollback", tenant.key)
    assert reply.status == 200
    assert reply.body["rolled_back_to"] == second["deployment_id"]
    assert reply.body["version"] == "v2"
    assert TIMESTAMP.fullmatch(reply.body["rolled_back_at"])
    new_id = reply.body["deployment_id"]
    assert DEP_ID.fullmatch(new_id) and new_id != second["deployment_id"]

    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):
        resolved = await api.call(
            "POST", "/v1/resolve", tenant.key, json={"prompt": "rollback", "user_id": user}
        )
        assert resolved.body["version"] == "v2"

    # Rolling back again walks further back instead of bouncing to the canary.
    again = await api.call("POST", "/v1/prompts/rollback/rollback", tenant.key)
    assert again.status == 200
    assert (again.body["rolled_back_to"], again.body["version"]) == (first["deployment_id"], "v1")

    exhausted = await api.call("POST", "/v1/prompts/rollback/rollback", tenant.key)
    assert exhausted.status == 409
    assert exhausted.code == "conflict"

    history = await api.call("GET", "/v1/prompts/rollback/deployments", tenant.key)
    assert history.status == 200
    rows = history.body["deployments"]
    assert history.body["total"] == len(rows) == 5
    assert [row["traffic"] for row in rows[:2]] == [
        [{"version": "v1", "weight": 100}],
        [{"version": "v2", "weight": 100}],
    ]
    assert rows[0]["rolled_back_to"] == first["deployment_id"]
    assert rows[1]["deployment_id"] == new_id
    assert rows[1]["rolled_back_to"] == second["deployment_id"]
    assert [row["rolled_back_to"] for row in rows[2:]] == [None, None, None]
    assert rows[-1] == first


async def test_rollback_skips_stable_deployments_of_the_version_already_serving(
    api: Api, tenant: Tenant
) -> None:
    await api.prompt(tenant, "relabelled", "one", "two")
    first = await _deploy(api, tenant, "relabelled", _all_to("v1"))
    await _deploy(api, tenant, "relabelled", _all_to("v2"))
    await _deploy(api, tenant, "relabelled", _all_to("v2") | {"label": "same version"})
    reply = await api.call("POST", "/v1/prompts/relabelled/rollback", tenant.key)
    assert reply.status == 200
    assert (reply.body["rolled_back_to"], reply.body["version"]) == (first["deployment_id"], "v1")


async def test_rollback_drops_targeting_rules(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "ruled", "one", "two")
    await _deploy(api, tenant, "ruled", _all_to("v1"))
    rule = {"name": "everyone", "traffic": [{"version": "v1", "weight": 100}]}
    await _deploy(api, tenant, "ruled", _all_to("v2") | {"rules": [rule]})
    reply = await api.call("POST", "/v1/prompts/ruled/rollback", tenant.key)
    assert reply.status == 200
    current = (await api.call("GET", "/v1/prompts/ruled", tenant.key)).body["deployment"]
    assert current["rules"] == []
    assert current["traffic"] == [{"version": "v1", "weight": 100}]


async def test_rollback_from_a_canary_run_as_a_rule_restores_the_version_it_left(
    api: Api, tenant: Tenant
) -> None:
    """100% v1 plus a rule sending everyone to v2 is a canary, not a stable deployment."""
    await api.prompt(tenant, "rule-canary", "one", "two")
    stable = await _deploy(api, tenant, "rule-canary", _all_to("v1"))
    beta = {"name": "beta", "traffic": [{"version": "v2", "weight": 100}]}
    await _deploy(api, tenant, "rule-canary", _all_to("v1") | {"rules": [beta]})
    canary = await api.call(
        "POST", "/v1/resolve", tenant.key, json={"prompt": "rule-canary", "user_id": "u1"}
    )
    assert (canary.body["version"], canary.body["traffic_rule"]) == ("v2", "beta")

    reply = await api.call("POST", "/v1/prompts/rule-canary/rollback", tenant.key)
    assert reply.status == 200, reply.body
    assert (reply.body["rolled_back_to"], reply.body["version"]) == (stable["deployment_id"], "v1")
    resolved = await api.call(
        "POST", "/v1/resolve", tenant.key, json={"prompt": "rule-canary", "user_id": "u1"}
    )
    assert resolved.body["version"] == "v1"


async def test_rollback_without_a_stable_deployment_is_409(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "never-stable", "one", "two")
    reply = await api.call("POST", "/v1/prompts/never-stable/rollback", tenant.key)
    assert reply.status == 409
    assert reply.code == "conflict"
    assert "never been deployed" in reply.body["error"]["message"]
    await _deploy(
        api,
        tenant,
        "never-stable",
        {"traffic": [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}]},
    )
    reply = await api.call("POST", "/v1/prompts/never-stable/rollback", tenant.key)
    assert reply.status == 409
    assert reply.code == "conflict"
