"""The SDK's clients against the real control plane over HTTP (an in-process server).

The configuration and stream routes are the server's own (``controlplane.api.sdk``), over
a SQLite store: the SDK resolves as ``POST /v1/resolve`` answers, and a deploy made through
the API changes what it resolves, through the stream, and through polling when the client
holds no stream. Waits are bounded and no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from promptline_sdk import AsyncClient, Client
from tests.controlplane.test_api_harness import Api, Tenant, migrated_store, open_api

WAIT = 20.0
PROMPT = "support-bot"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with migrated_store(None, tmp_path) as url, open_api(url) as harness:
        yield harness


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def deploy(api: Api, tenant: Tenant, traffic: list[dict[str, Any]], **extra: Any) -> None:
    body = {"traffic": traffic, **extra}
    reply = await api.call("POST", f"/v1/prompts/{PROMPT}/deploy", tenant.key, json=body)
    assert reply.status in (200, 201), reply.body


async def setup(api: Api) -> tuple[Tenant, str]:
    tenant = await api.tenant()
    await api.prompt(tenant, PROMPT, "v1 for {{company}}.", "v2 for {{company}}, {{user.tier}}!")
    await deploy(api, tenant, [{"version": "v1", "weight": 100}], label="stable")
    return tenant, str(api.client.server.make_url("")).rstrip("/")


async def server_answer(api: Api, tenant: Tenant, body: dict[str, Any]) -> tuple[int, Any]:
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=body)
    answer = reply.body
    if reply.status == 200:
        del answer["resolved_at"]
    else:
        answer = {k: answer["error"].get(k) for k in ("code", "message", "field")}
    return reply.status, answer


async def test_the_async_client_answers_as_the_server_and_follows_deploys(api: Api) -> None:
    tenant, url = await setup(api)
    rules = [
        {
            "name": "gold",
            "when": [{"attribute": "user.tier", "op": "eq", "value": "gold"}],
            "traffic": [{"version": "v2", "weight": 100}],
            "coverage": 50,
        }
    ]
    async with AsyncClient(url, tenant.key, poll_interval=3600, events=False) as client:
        assert client.resolve(PROMPT, "u", {"company": "A"}).version == "v1"
        await deploy(
            api,
            tenant,
            [{"version": "v1", "weight": 60}, {"version": "v2", "weight": 40}],
            rules=rules,
            label="canary",
        )
        await until(lambda: client.resolve(PROMPT, "u").traffic_rule == "canary")  # the stream
        for index in range(200):
            user = f"usr_{index}"
            context: dict[str, Any] = {
                "company": "Acme",
                "user": {"tier": ["gold", "x"][index % 2]},
            }
            strict = index % 7 == 0
            body = {"prompt": PROMPT, "user_id": user, "context": context, "strict": strict}
            status, expected = await server_answer(api, tenant, body)
            got = client.resolve(PROMPT, user, context, strict=strict)
            if status == 200:
                answer = got.to_dict()
                del answer["resolved_at"]
                assert answer == expected and got.source == "config"
            else:
                assert got.error is not None
                assert got.error.to_dict() == expected and got.error.status == status
        status, expected = await server_answer(api, tenant, {"prompt": "nope", "user_id": "u"})
        missing = client.resolve("nope", "u")
        assert missing.error is not None and missing.error.to_dict() == expected


async def test_polling_follows_a_deploy_without_a_stream(api: Api) -> None:
    tenant, url = await setup(api)
    async with AsyncClient(
        url, tenant.key, stream=False, poll_interval=0.1, events=False
    ) as client:
        etag = client.config_etag
        await deploy(api, tenant, [{"version": "v2", "weight": 100}])
        await until(lambda: client.resolve(PROMPT, "u").version == "v2")
        assert client.config_etag != etag


async def test_the_sync_client_in_a_thread(api: Api) -> None:
    tenant, url = await setup(api)

    def start() -> Client:
        return Client(url, tenant.key, poll_interval=3600, events=False, startup_timeout=WAIT)

    client = await asyncio.to_thread(start)
    try:
        assert client.resolve(PROMPT, "u", {"company": "A"}).content == "v1 for A."
        await deploy(api, tenant, [{"version": "v2", "weight": 100}])
        await until(lambda: client.resolve(PROMPT, "u").version == "v2")
    finally:
        await asyncio.to_thread(client.close)
