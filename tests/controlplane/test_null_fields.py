"""Control-plane bodies: ``null`` for an optional field is the same as leaving it out."""

from __future__ import annotations

from tests.controlplane.test_api_harness import Api, Tenant


async def test_null_description_message_label_and_strict_are_their_defaults(
    api: Api, tenant: Tenant
) -> None:
    created = await api.call(
        "POST", "/v1/prompts", tenant.key, json={"name": "nulls", "description": None}
    )
    assert created.status == 201, created.body
    assert created.body["description"] == ""
    prompt = created.body["id"]
    pushed = await api.call(
        "POST",
        f"/v1/prompts/{prompt}/versions",
        tenant.key,
        json={"content": "Hello {{name}}", "message": None, "variables": None},
    )
    assert pushed.status == 201, pushed.body
    assert pushed.body["message"] == ""
    deployed = await api.call(
        "POST",
        f"/v1/prompts/{prompt}/deploy",
        tenant.key,
        json={"traffic": [{"version": "v1", "weight": 100}], "label": None, "rules": None},
    )
    assert deployed.status == 201, deployed.body
    assert deployed.body["label"] == ""
    resolved = await api.call(
        "POST",
        "/v1/resolve",
        tenant.key,
        json={"prompt": "nulls", "user_id": "u-1", "context": None, "strict": None},
    )
    assert resolved.status == 200, resolved.body
    assert resolved.body["version"] == "v1"
    assert resolved.body["content"] == "Hello {{name}}"  # not strict: a missing variable stays


async def test_null_for_a_required_field_is_still_refused(api: Api, tenant: Tenant) -> None:
    reply = await api.call("POST", "/v1/prompts", tenant.key, json={"name": None})
    assert (reply.status, reply.body["error"]["field"]) == (400, "name")
    reply = await api.call("POST", "/v1/resolve", tenant.key, json={"prompt": "p", "user_id": None})
    assert (reply.status, reply.body["error"]["field"]) == (400, "user_id")


async def test_null_when_and_coverage_of_a_rule_are_their_defaults(
    api: Api, tenant: Tenant
) -> None:
    created = await api.call("POST", "/v1/prompts", tenant.key, json={"name": "rules-null"})
    prompt = created.body["id"]
    for content in ("one", "two"):
        pushed = await api.call(
            "POST", f"/v1/prompts/{prompt}/versions", tenant.key, json={"content": content}
        )
        assert pushed.status == 201, pushed.body
    rule = {
        "name": "all",
        "when": None,
        "coverage": None,
        "traffic": [{"version": "v2", "weight": 100}],
    }
    deployed = await api.call(
        "POST",
        f"/v1/prompts/{prompt}/deploy",
        tenant.key,
        json={"traffic": [{"version": "v1", "weight": 100}], "rules": [rule]},
    )
    assert deployed.status == 201, deployed.body
    assert deployed.body["rules"][0]["when"] == []
    assert "coverage" not in deployed.body["rules"][0]  # 100, the default, is not stored
    resolved = await api.call(
        "POST", "/v1/resolve", tenant.key, json={"prompt": "rules-null", "user_id": "u-7"}
    )
    assert (resolved.status, resolved.body["version"]) == (200, "v2")  # the rule matches all
