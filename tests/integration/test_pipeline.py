"""One analytics event, end to end: edge -> real Kafka -> worker -> real ClickHouse."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from tests.support.warehouse import wait_for_rows
from workers.service import run_worker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


async def test_analytics_event_reaches_clickhouse_with_every_field(migrated: Settings) -> None:
    demo = await quickstart(migrated)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(migrated, stop))
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with TestClient(TestServer(create_app(migrated))) as client:
        response = await client.post(
            "/api/v1/prompts/analytics",
            json={
                "prompt_id": demo["prompt_id"],
                "version_hash": demo["version_hash"],
                "latency_ms": 412.5,
                "cost_usd": 0.0021,
                "score": 0.9,
            },
            headers={"Authorization": f"Bearer {demo['api_key']}"},
        )
        assert response.status == 204
        assert await response.read() == b""
    try:
        rows = await wait_for_rows(
            migrated,
            "SELECT event_id, received_at, org_id, project_id, prompt_id, version_hash,"
            " latency_ms, cost_usd, score, dedup_key FROM analytics_events FINAL",
            expected=1,
        )
    finally:
        stop.set()
        await worker
    assert len(rows) == 1
    (
        event_id,
        received_at,
        org_id,
        project_id,
        prompt_id,
        version_hash,
        latency,
        cost,
        score,
        dedup_key,
    ) = rows[0]
    assert isinstance(event_id, uuid.UUID) and event_id.version == 7
    assert before <= received_at.replace(tzinfo=UTC) <= datetime.now(UTC)
    assert str(org_id) == demo["org_id"]
    assert str(project_id) == demo["project_id"]
    assert str(prompt_id) == demo["prompt_id"]
    assert version_hash == demo["version_hash"]
    assert (latency, cost, score) == (412.5, 0.0021, 0.9)
    assert dedup_key == str(event_id)


async def test_rejected_event_never_reaches_kafka(migrated: Settings) -> None:
    demo = await quickstart(migrated)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(migrated, stop))
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    async with TestClient(TestServer(create_app(migrated))) as client:
        bad = await client.post(
            "/api/v1/prompts/analytics",
            json={
                "prompt_id": demo["prompt_id"],
                "version_hash": demo["version_hash"],
                "latency_ms": -5,
            },
            headers=headers,
        )
        assert bad.status == 400
        good = await client.post(
            "/api/v1/prompts/analytics",
            json={
                "prompt_id": demo["prompt_id"],
                "version_hash": demo["version_hash"],
                "latency_ms": 5,
            },
            headers=headers,
        )
        assert good.status == 204
    try:
        rows = await wait_for_rows(
            migrated, "SELECT latency_ms FROM analytics_events FINAL", expected=1
        )
        # The worker has caught up with the good event, which was sent after the bad one.
        assert [row[0] for row in rows] == [5.0]
    finally:
        stop.set()
        await worker
