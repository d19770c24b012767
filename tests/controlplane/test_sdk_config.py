"""``GET /v1/sdk/config`` (issue 16): what resolve serves, as data, with a per-project ETag.

The configuration is checked against resolve itself: for deployments with splits and rules,
an independent reading of the configuration (the hash and bucket layout from docs/sdk.md
with ``mmh3`` directly, the server's condition and template compilers) picks, for every
user and context, the version, rule, content and missing variables that
``POST /v1/resolve`` answers.
"""

from __future__ import annotations

import uuid
from typing import Any

import mmh3
import pytest

from controlplane.api.answer_models import SdkConfig
from controlplane.api.ratelimit import Endpoint, LimitClass, plan_limit
from controlplane.resolve.conditions import compile_condition
from controlplane.resolve.interpolate import compile_template
from controlplane.resolve.rules import ConditionSpec
from controlplane.sdk_config import build_config
from controlplane.store.models import Scope
from tests.controlplane.test_api_harness import Api, Reply, Tenant

CONFIG = "/v1/sdk/config"
# u-1, u-10..u-19 and u-100..u-139 match the "ones" rule: 51 users, each admitted by its
# 33.33% coverage, so that no salt leaves the rule unexercised ((2/3)**51, about 1e-9).
USERS = [f"u-{index}" for index in range(80)] + [f"u-{index}" for index in range(100, 140)]
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"locale": "de-DE", "company": "Acme"},
    {"plan": "pro", "user": {"name": "Ann"}, "company": "Initech"},
    {"plan": "team", "locale": "fr-FR", "user_id": "u-1-spoofed", "company": None},
    {"cart_value": 42, "company": 7, "user": {"name": ["a", "b"]}},
]
RULES: list[dict[str, Any]] = [
    {
        "name": "germany",
        "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
        "traffic": [{"version": "v3", "weight": 100}],
    },
    {
        "name": "paying-half",
        "when": [{"attribute": "plan", "op": "in", "value": ["pro", "team"]}],
        "traffic": [{"version": "v2", "weight": 30}, {"version": "v1", "weight": 70}],
        "coverage": 50,
    },
    {
        "name": "ones",
        "when": [{"attribute": "user_id", "op": "starts_with", "value": "u-1"}],
        "traffic": [{"version": "v2", "weight": 100}],
        "coverage": 33.33,
    },
]


async def _config(api: Api, key: str, headers: dict[str, str] | None = None) -> Reply:
    return await api.call("GET", CONFIG, key, headers=headers)


async def _deploy(api: Api, tenant: Tenant, prompt: str, body: dict[str, Any]) -> None:
    reply = await api.call("POST", f"/v1/prompts/{prompt}/deploy", tenant.key, json=body)
    assert reply.status == 201, reply.body


def _bucket(salt: str, user_id: str) -> int:
    """docs/sdk.md: murmur3 x86_32, seed 0, unsigned, of ``{salt}:{user_id}``, mod 10000."""
    return mmh3.hash(f"{salt}:{user_id}", 0, False) % 10_000


def _draw(traffic: list[dict[str, Any]], bucket: int) -> int:
    """docs/sdk.md: ascending version order, each taking ``weight * 100`` buckets."""
    upper = 0
    for number, weight in sorted((int(e["version"][1:]), e["weight"]) for e in traffic):
        upper += weight * 100
        if weight > 0 and bucket < upper:
            return number
    raise AssertionError("weights do not sum to 100")


def _admits(rule: dict[str, Any], salt: str, user_id: str, context: dict[str, Any]) -> bool:
    for condition in rule["when"]:
        spec = ConditionSpec.model_validate(condition)
        if not compile_condition(spec.attribute, spec.op, spec.value).holds(user_id, context):
            return False
    coverage_buckets = round(float(rule.get("coverage", 100)) * 100)
    return _bucket(f"{salt}:coverage:{rule['name']}", user_id) < coverage_buckets


def _local(prompt: dict[str, Any], user_id: str, context: dict[str, Any]) -> dict[str, Any]:
    """Resolve from the configuration alone, as docs/sdk.md describes it."""
    salt = uuid.UUID(prompt["prompt_uuid"]).hex
    for rule in prompt["rules"]:
        if _admits(rule, salt, user_id, context):
            number, decided = _draw(rule["traffic"], _bucket(salt, user_id)), rule["name"]
            break
    else:
        number = _draw(prompt["traffic"], _bucket(salt, user_id))
        decided = prompt["traffic_rule"]
    version = next(v for v in prompt["versions"] if v["number"] == number)
    content, missing = compile_template(version["content"]).render(context)
    return {
        "prompt": prompt["name"],
        "version": version["version"],
        "content": content,
        "traffic_rule": decided,
        "prompt_id": prompt["prompt_id"],
        "prompt_uuid": prompt["prompt_uuid"],
        "version_id": version["version_id"],
        "content_hash": version["content_hash"],
        "deployment_id": prompt["deployment_id"],
        "missing_variables": list(missing),
    }


async def _world(api: Api, tenant: Tenant) -> None:
    """A split with rules, a labelled canary, a never-deployed prompt, one with no version."""
    await api.prompt(
        tenant,
        "ruled",
        "One {{company}}",
        "Two {{ user.name }} at {{company}}",
        "Drei {{company}} {{company}}",
    )
    traffic = [{"version": "v3", "weight": 50}, {"version": "v1", "weight": 20}]
    traffic.append({"version": "v2", "weight": 30})
    await _deploy(api, tenant, "ruled", {"traffic": traffic, "rules": RULES})
    await api.prompt(tenant, "canary", "old {{company}}", "new {{company}}")
    canary = [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]
    await _deploy(api, tenant, "canary", {"traffic": canary, "label": "canary-10"})
    await api.prompt(tenant, "fresh", "first", "second {{missing}}")
    await api.prompt(tenant, "empty")


async def test_the_configuration_resolves_exactly_as_resolve_does(api: Api, tenant: Tenant) -> None:
    await _world(api, tenant)
    reply = await _config(api, tenant.key)
    assert reply.status == 200, reply.body
    config = reply.body
    SdkConfig.model_validate(config)
    assert config["project_id"] == str(tenant.project_id)
    assert reply.headers["ETag"] == config["etag"]
    assert reply.headers["Cache-Control"] == "no-cache"
    assert [p["name"] for p in config["prompts"]] == ["canary", "fresh", "ruled"]  # not "empty"
    prompts = {p["name"]: p for p in config["prompts"]}
    assert prompts["fresh"]["traffic_rule"] == "latest"
    assert prompts["fresh"]["deployment_id"] is None
    assert [v["version"] for v in prompts["fresh"]["versions"]] == ["v2"]
    assert prompts["canary"]["traffic_rule"] == "canary-10"
    assert [v["number"] for v in prompts["ruled"]["versions"]] == [1, 2, 3]
    stored = await api.call("GET", "/v1/prompts/ruled/deployments", tenant.key)
    newest = stored.body["deployments"][0]
    assert prompts["ruled"]["rules"] == newest["rules"]
    assert prompts["ruled"]["traffic"] == newest["traffic"]
    assert prompts["ruled"]["deployment_id"] == newest["deployment_id"]
    assert prompts["ruled"]["traffic_rule"] == newest["deployment_id"]  # no label
    decided: set[str] = set()
    for prompt in config["prompts"]:
        for context in CONTEXTS:
            for user_id in USERS:
                body = {"prompt": prompt["name"], "user_id": user_id, "context": context}
                served = await api.call("POST", "/v1/resolve", tenant.key, json=body)
                assert served.status == 200, served.body
                answer = dict(served.body)
                del answer["resolved_at"]
                assert _local(prompt, user_id, context) == answer, (user_id, context)
                decided.add(answer["traffic_rule"])
    assert {"germany", "paying-half", "ones", "canary-10", "latest"} <= decided


async def test_strict_fails_exactly_when_the_configuration_says_variables_are_missing(
    api: Api, tenant: Tenant
) -> None:
    await api.prompt(tenant, "strict", "Hi {{name}} from {{ place.city }}")
    config = (await _config(api, tenant.key)).body
    prompt = config["prompts"][0]
    for context in ({"name": "Ann", "place": {"city": "Oslo"}}, {"name": "Ann"}, {}):
        missing = _local(prompt, "u-1", context)["missing_variables"]
        body = {"prompt": "strict", "user_id": "u-1", "context": context, "strict": True}
        reply = await api.call("POST", "/v1/resolve", tenant.key, json=body)
        assert reply.status == (400 if missing else 200), reply.body


async def test_the_etag_is_stable_and_a_matching_if_none_match_is_304(
    api: Api, tenant: Tenant
) -> None:
    await api.prompt(tenant, "stable", "Hello")
    first = await _config(api, tenant.key)
    second = await _config(api, tenant.key)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert second.headers["ETag"] == etag
    assert {k: v for k, v in first.body.items() if k != "generated_at"} == {
        k: v for k, v in second.body.items() if k != "generated_at"
    }
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await _config(api, tenant.key, {"If-None-Match": header})
        assert cached.status == 304
        assert cached.body is None
        assert cached.headers["ETag"] == etag
    stale = await _config(api, tenant.key, {"If-None-Match": '"0000"'})
    assert stale.status == 200
    assert stale.body["etag"] == etag
    # A function of the content alone: built afresh, without the route's caches, the same.
    assert build_config(api.watcher.current, tenant.project_id).etag == etag


async def test_the_etag_moves_with_this_projects_changes_only(api: Api, tenant: Tenant) -> None:
    other = await api.tenant()
    await api.prompt(tenant, "bot", "one", "two")
    await api.prompt(other, "bot", "theirs one", "theirs two")
    seen = [(await _config(api, tenant.key)).headers["ETag"]]

    async def moved() -> bool:
        etag = (await _config(api, tenant.key)).headers["ETag"]
        changed = etag != seen[-1]
        seen.append(etag)
        return changed

    await _deploy(api, other, "bot", {"traffic": [{"version": "v1", "weight": 100}]})
    assert not await moved(), "another project's deploy moved this project's ETag"
    await _deploy(api, tenant, "bot", {"traffic": [{"version": "v1", "weight": 100}]})
    assert await moved()
    canary = [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]
    await _deploy(api, tenant, "bot", {"traffic": canary})
    assert await moved()
    rolled = await api.call("POST", "/v1/prompts/bot/rollback", tenant.key)
    assert rolled.status == 200, rolled.body
    assert await moved()
    await api.prompt(tenant, "undeployed", "first")
    assert await moved()
    pushed = await api.call(
        "POST", "/v1/prompts/undeployed/versions", tenant.key, json={"content": "second"}
    )
    assert pushed.status == 201, pushed.body
    assert await moved(), "a new latest version of a never-deployed prompt is served"
    await api.call("POST", "/v1/prompts/bot/versions", tenant.key, json={"content": "three"})
    assert not await moved(), "a version no deployment serves changes nothing resolve serves"


async def test_other_projects_are_never_in_the_configuration(api: Api, tenant: Tenant) -> None:
    other = await api.tenant()
    mine = await api.prompt(tenant, "shared-name", "mine")
    theirs = await api.prompt(other, "shared-name", "theirs {{secret}}")
    await api.prompt(other, "only-theirs", "theirs too")
    config = (await _config(api, tenant.key)).body
    text = str(config)
    assert [p["prompt_id"] for p in config["prompts"]] == [mine["id"]]
    assert theirs["id"] not in text
    assert "theirs" not in text
    assert config["project_id"] == str(tenant.project_id)


async def test_the_routes_need_a_read_key(api: Api, tenant: Tenant) -> None:
    ingest_only = await api.key(tenant, [Scope.INGEST])
    read_only = await api.key(tenant, [Scope.READ])
    for path in (CONFIG, "/v1/sdk/stream?once=true"):
        assert (await api.call("GET", path)).status == 401
        assert (await api.call("GET", path, "pl_sk_not-a-key")).status == 401
        refused = await api.call("GET", path, ingest_only)
        assert refused.status == 403
        assert refused.code == "forbidden"
    assert (await _config(api, read_only)).status == 200


def test_the_sdk_limit_class_is_sized_for_fleets() -> None:
    assert plan_limit("free", LimitClass.SDK) == "60/minute"
    assert plan_limit("team", LimitClass.SDK) == "6000/minute"
    assert plan_limit("business", LimitClass.SDK) == "30000/minute"


@pytest.mark.parametrize("override", ["GET /sdk", "GET /v1/sdk/config"])
async def test_the_config_counts_against_the_sdk_limit(api: Api, override: str) -> None:
    tenant = await api.tenant("free", {override: "3/minute"})
    for _ in range(3):
        assert (await _config(api, tenant.key)).status == 200
    limited = await _config(api, tenant.key)
    assert limited.status == 429
    assert limited.code == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "GET /v1/sdk/config" in limited.body["error"]["message"]
    prompts = await api.call("GET", "/v1/prompts", tenant.key)
    assert prompts.status == 200, "the SDK's bucket is its own"


def test_both_routes_are_in_the_sdk_class() -> None:
    from controlplane.api import sdk

    endpoints = [value for value in vars(sdk).values() if isinstance(value, Endpoint)]
    assert {e.name for e in endpoints} == {"GET /v1/sdk/config", "GET /v1/sdk/stream"}
    assert {e.limit_class for e in endpoints} == {LimitClass.SDK}
