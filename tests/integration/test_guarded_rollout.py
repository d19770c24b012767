"""A guarded canary end to end on the local stack, with nobody deciding by hand.

Resolve traffic (each answer an exposure) and analytics events flow through the real
broker into the real ClickHouse engine; the candidate answers 50% slower. The guard, run as
``promptline guard`` runs it, rolls it back on its own: resolve then serves the baseline to
everyone, the deployment history and ``GET .../rollout`` say why, and a local receiver got
the signed webhook.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controlplane.webhooks.signing import verify_signature
from guard.service import run_guard
from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from promptline.worker import run_worker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

Client = TestClient[web.Request, web.Application]
USERS = 400
GIVE_UP_SECONDS = 90.0
"""How long the guard may take to act: a bound on waiting, not a check."""


class Receiver:
    """A webhook receiver on a loopback port that keeps every request."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app)

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    def of_type(self, kind: str) -> list[tuple[dict[str, str], bytes]]:
        return [
            (headers, body) for headers, body in self.received if orjson.loads(body)["type"] == kind
        ]


@pytest.fixture
async def stack(
    migrated: Settings,
) -> AsyncIterator[tuple[Settings, Client, Receiver, dict[str, Any]]]:
    settings = migrated.model_copy(
        update={
            "guard_interval_seconds": 0.5,
            "webhook_allow_private_targets": True,
            "webhook_poll_seconds": 0.2,
        }
    )
    demo = await quickstart(settings)  # before the app starts: its catalog knows the key
    stop = asyncio.Event()
    receiver = Receiver()
    await receiver.server.start_server()
    worker = asyncio.create_task(run_worker(settings, stop))
    guard = asyncio.create_task(run_guard(settings, stop))
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            yield settings, client, receiver, demo
    finally:
        stop.set()
        await asyncio.gather(worker, guard)
        await receiver.server.close()


async def test_the_guard_rolls_back_a_slower_canary_on_its_own(
    stack: tuple[Settings, Client, Receiver, dict[str, Any]],
) -> None:
    _settings, client, receiver, demo = stack
    auth = {"Authorization": f"Bearer {demo['api_key']}"}
    prompt = f"/v1/prompts/{demo['prompt_id']}"

    async def call(method: str, path: str, body: Any = None) -> Any:
        response = await client.request(method, path, json=body, headers=auth)
        assert response.status < 300, await response.text()
        return await response.json()

    await call("POST", f"{prompt}/versions", {"content": "A faster, {{tone}} answer."})
    await call("POST", f"{prompt}/deploy", {"traffic": [{"version": "v1", "weight": 100}]})
    hook = await call("POST", "/v1/webhooks", {"url": f"{receiver.server.make_url('/hook')}"})
    started = await call(
        "POST",
        f"{prompt}/deploy",
        {
            "guard": {
                "candidate": "v2",
                "ramp": [50, 100],
                "min_units": 50,
                "min_events": 50,
                "min_step_seconds": 3_600,
                "guardrails": [{"metric": "latency_ms", "margin": 0.05}],
            }
        },
    )

    rng = random.Random(15)
    events = []
    for index in range(USERS):
        answer = await call(
            "POST", "/v1/resolve", {"prompt": demo["prompt_name"], "user_id": f"u{index}"}
        )
        slower = answer["version"] == "v2"
        events.append(
            {
                "type": "analytics",
                "prompt_id": demo["prompt_id"],
                "version_hash": answer["content_hash"],
                "latency_ms": rng.gauss(150.0 if slower else 100.0, 10.0),
            }
        )
    for first in range(0, len(events), 200):
        sent = await call("POST", "/api/v1/events/batch", {"events": events[first : first + 200]})
        assert sent["accepted"] == len(events[first : first + 200])

    deadline = time.monotonic() + GIVE_UP_SECONDS
    rollout: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rollout = await call("GET", f"{prompt}/rollout")
        if rollout["status"] != "running" and receiver.of_type("rollout.rolled_back"):
            break
        await asyncio.sleep(0.5)
    assert rollout["status"] == "rolled_back", rollout
    assert rollout["outcome"].startswith("latency_ms regressed"), rollout["outcome"]
    latency = rollout["evaluation"]["guardrails"][0]
    assert latency["verdict"] == "regressed"
    assert latency["estimate"] > 0.3 and latency["interval"]["lower"] > 0.05
    assert set(rollout["evaluation"]["units"]) == {
        "candidate",
        "baseline",
    }  # a regression needs no minimum units: exposures may still be in flight
    assert rollout["evaluation"]["sample_ratio"]["mismatch"] is False

    history = (await call("GET", f"{prompt}/deployments"))["deployments"]
    assert history[0]["traffic"] == [{"version": "v1", "weight": 100}]
    assert history[0]["deployed_by"] == "guard"
    assert history[0]["rollout_id"] == started["rollout_id"]
    assert "latency_ms regressed" in history[0]["reason"]

    await asyncio.sleep(1.5)  # the catalog's poll: a bound on waiting, not a check
    served = {
        (
            await call(
                "POST", "/v1/resolve", {"prompt": demo["prompt_name"], "user_id": f"u{index}"}
            )
        )["version"]
        for index in range(100)
    }
    assert served == {"v1"}

    [(headers, body)] = receiver.of_type("rollout.rolled_back")
    assert verify_signature(hook["secret"], headers["Promptline-Signature"], body)
    assert headers["Promptline-Event"] == "rollout.rolled_back"
    data = orjson.loads(body)["data"]
    assert data["rollout"]["rollout_id"] == started["rollout_id"]
    assert "latency_ms regressed" in data["deployment"]["reason"]
