"""Rate limits per key and endpoint, by plan, with overrides; in memory and in Redis."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from blockbuster import BlockBuster

from controlplane.api.ratelimit import (
    Endpoint,
    LimitClass,
    limits_for,
    normalize_endpoint,
    plan_limit,
)
from controlplane.catalog import Principal
from promptline.devstack.services import free_port
from tests.controlplane.test_api_harness import (
    Api,
    Reply,
    Tenant,
    allow_pg_connect_probes,
    open_api,
)

RESOLVE = Endpoint("POST /v1/resolve", LimitClass.RESOLVE)
DEPLOY = Endpoint("POST /v1/prompts/:prompt_id/deploy", LimitClass.DEPLOY)
DASHBOARD_VERSIONS = Endpoint("GET /dashboard/prompts/:name/versions", LimitClass.READ)


def _principal(plan: str = "free", overrides: dict[str, Any] | None = None) -> Principal:
    return Principal(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), plan, frozenset(), dict(overrides or {})
    )


def _limit(principal: Principal, endpoint: Endpoint) -> list[tuple[int, int]]:
    return [(item.amount, item.get_expiry()) for item in limits_for(principal, endpoint)]


def _assert_429(reply: Reply, code: str, window: int) -> None:
    assert reply.status == 429, reply.body
    assert reply.code == code
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= window


# --- the plan table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit_class", "free", "team"),
    [
        (LimitClass.RESOLVE, "10/second", "500/second"),
        (LimitClass.READ, "30/minute", "300/minute"),
        (LimitClass.WRITE, "20/minute", "200/minute"),
        (LimitClass.DEPLOY, "5/minute", "60/minute"),
    ],
)
def test_plans_follow_seed_001s_table(limit_class: LimitClass, free: str, team: str) -> None:
    assert plan_limit("free", limit_class) == free
    assert plan_limit("team", limit_class) == team
    amount, unit = team.split("/")
    assert plan_limit("business", limit_class) == f"{int(amount) * 5}/{unit}"
    assert plan_limit("enterprise-someday", limit_class) == free


def test_overrides_replace_the_plan_limit_by_endpoint_name() -> None:
    principal = _principal("free", {"POST /v1/resolve": "2000/second"})
    assert _limit(principal, RESOLVE) == [(2000, 1)]
    assert _limit(principal, DEPLOY) == [(5, 60)]


@pytest.mark.parametrize(
    ("key", "endpoint"),
    [
        ("POST /deploy", DEPLOY),
        ("post /v1/prompts/{prompt_id}/deploy/", DEPLOY),
        ("GET /dashboard/prompts/{name}/versions", DASHBOARD_VERSIONS),
    ],
)
def test_override_keys_may_use_short_names_and_brace_placeholders(
    key: str, endpoint: Endpoint
) -> None:
    assert _limit(_principal("team", {key: "7/hour;2/second"}), endpoint) == [(7, 3600), (2, 1)]


def test_an_unparsable_override_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "controlplane.api.ratelimit"):
        assert _limit(_principal("team", {"POST /v1/resolve": "lots"}), RESOLVE) == [(500, 1)]
    assert "lots" in caplog.text
    assert _limit(_principal("team", {"POST /v1/resolve": 5}), RESOLVE) == [(500, 1)]


def test_endpoint_names_normalise() -> None:
    assert normalize_endpoint(" get /a/{x}/ ") == "GET /a/:x"
    assert normalize_endpoint("POST /") == "POST /"


# --- over HTTP -------------------------------------------------------------------------


async def test_free_plan_reads_are_limited_per_key_and_endpoint(api: Api) -> None:
    tenant = await api.tenant("free")
    for _ in range(30):
        assert (await api.call("GET", "/v1/prompts", tenant.key)).status == 200
    _assert_429(await api.call("GET", "/v1/prompts", tenant.key), "rate_limited", 60)
    other_key = await api.key(tenant, ["read"])
    assert (await api.call("GET", "/v1/prompts", other_key)).status == 200
    other_endpoint = await api.call("GET", "/dashboard/prompts/", tenant.key)
    assert other_endpoint.status == 200


async def test_free_plan_deploys_are_limited_to_5_a_minute(api: Api) -> None:
    tenant = await api.tenant("free")
    body = {"traffic": [{"version": "v1", "weight": 100}]}
    for _ in range(5):
        reply = await api.call("POST", "/v1/prompts/missing/deploy", tenant.key, json=body)
        assert reply.status == 404
    _assert_429(
        await api.call("POST", "/v1/prompts/missing/deploy", tenant.key, json=body),
        "rate_limited",
        60,
    )


async def test_overrides_apply_over_http_in_each_familys_code(api: Api) -> None:
    tenant = await api.tenant(
        "business",
        {"POST /v1/resolve": "2/minute", "GET /api/v1/prompt-templates": "1/minute"},
    )
    await api.prompt(tenant, "limited", "content")
    body = {"prompt": "limited", "user_id": "u"}
    for _ in range(2):
        assert (await api.call("POST", "/v1/resolve", tenant.key, json=body)).status == 200
    _assert_429(await api.call("POST", "/v1/resolve", tenant.key, json=body), "rate_limited", 60)
    assert (await api.call("GET", "/api/v1/prompt-templates", tenant.key)).status == 200
    _assert_429(
        await api.call("GET", "/api/v1/prompt-templates", tenant.key), "RATE_LIMIT_EXCEEDED", 60
    )


async def test_an_override_can_raise_a_free_limit(api: Api) -> None:
    tenant = await api.tenant("free", {"GET /prompts": "40/minute"})
    statuses = [(await api.call("GET", "/v1/prompts", tenant.key)).status for _ in range(40)]
    assert statuses == [200] * 40
    _assert_429(await api.call("GET", "/v1/prompts", tenant.key), "rate_limited", 60)


@pytest.mark.redis
async def test_redis_counters_are_shared_by_every_process(
    store_url: str, redis_url: str, blockbuster: BlockBuster
) -> None:
    allow_pg_connect_probes(blockbuster)
    async with open_api(store_url, redis_url) as first, open_api(store_url, redis_url) as second:
        tenant = await first.tenant("business", {"GET /v1/prompts": "2/minute"})
        await second.watcher.refresh()
        assert (await first.call("GET", "/v1/prompts", tenant.key)).status == 200
        assert (await second.call("GET", "/v1/prompts", tenant.key)).status == 200
        _assert_429(await first.call("GET", "/v1/prompts", tenant.key), "rate_limited", 60)
        _assert_429(await second.call("GET", "/v1/prompts", tenant.key), "rate_limited", 60)


@pytest.mark.redis
async def test_resolve_counts_in_redis_too(
    store_url: str, redis_url: str, blockbuster: BlockBuster
) -> None:
    """Resolve skips admit's coroutine for in-memory counters; with Redis it awaits them."""
    allow_pg_connect_probes(blockbuster)
    async with open_api(store_url, redis_url) as first, open_api(store_url, redis_url) as second:
        tenant = await first.tenant("business", {"POST /v1/resolve": "3/minute"})
        await first.prompt(tenant, "shared", "content")
        await second.watcher.refresh()
        body = {"prompt": "shared", "user_id": "u"}
        statuses = [
            (await api.call("POST", "/v1/resolve", tenant.key, json=body)).status
            for api in (first, second, first)
        ]
        assert statuses == [200, 200, 200]
        _assert_429(
            await second.call("POST", "/v1/resolve", tenant.key, json=body), "rate_limited", 60
        )


async def test_an_unreachable_redis_lets_calls_through(
    store_url: str, blockbuster: BlockBuster, caplog: pytest.LogCaptureFixture
) -> None:
    allow_pg_connect_probes(blockbuster)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with open_api(store_url, dead) as api:
        tenant: Tenant = await api.tenant("free", {"GET /v1/prompts": "1/minute"})
        with caplog.at_level(logging.WARNING, "controlplane.api.ratelimit"):
            for _ in range(3):
                assert (await api.call("GET", "/v1/prompts", tenant.key)).status == 200
    assert "letting the call through" in caplog.text
