"""Analytics events end to end: edge -> real Kafka -> worker -> real ClickHouse."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from promptline.worker import run_worker
from tests.support.warehouse import wait_for_rows

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@dataclass
class Pipeline:
    """The edge (in-process), a running worker, and the demo tenant's ids and key."""

    settings: Settings
    client: TestClient[web.Request, web.Application]
    demo: dict[str, Any]

    async def send(self, **fields: Any) -> int:
        body = {"prompt_id": self.demo["prompt_id"], "version_hash": self.demo["version_hash"]}
        response = await self.client.post(
            "/api/v1/prompts/analytics",
            json=body | fields,
            headers={"Authorization": f"Bearer {self.demo['api_key']}"},
        )
        assert await response.read() == b"" or response.status >= 400
        return response.status


@pytest.fixture
async def pipeline(migrated: Settings) -> AsyncIterator[Pipeline]:
    demo = await quickstart(migrated)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(migrated, stop))
    try:
        async with TestClient(TestServer(create_app(migrated))) as client:
            yield Pipeline(migrated, client, demo)
    finally:
        stop.set()
        await worker


async def test_analytics_event_reaches_clickhouse_with_every_field(pipeline: Pipeline) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert await pipeline.send(latency_ms=412.5, cost_usd=0.0021, score=0.9) == 204
    rows = await wait_for_rows(
        pipeline.settings,
        "SELECT event_id, received_at, org_id, project_id, prompt_id, version_hash,"
        " latency_ms, cost_usd, score, dedup_key FROM analytics_events FINAL",
        expected=1,
    )
    assert len(rows) == 1
    (event_id, received_at, org_id, project_id, prompt_id, version_hash, latency, cost, score,
     dedup_key) = rows[0]  # fmt: skip
    demo = pipeline.demo
    assert isinstance(event_id, uuid.UUID) and event_id.version == 7
    assert before <= received_at.replace(tzinfo=UTC) <= datetime.now(UTC)
    assert str(org_id) == demo["org_id"]
    assert str(project_id) == demo["project_id"]
    assert str(prompt_id) == demo["prompt_id"]
    assert version_hash == demo["version_hash"]
    assert (latency, cost, score) == (412.5, 0.0021, 0.9)
    assert dedup_key == str(event_id)


async def test_rejected_event_never_reaches_kafka(pipeline: Pipeline) -> None:
    assert await pipeline.send(latency_ms=-5) == 400
    assert await pipeline.send(latency_ms=5) == 204
    rows = await wait_for_rows(
        pipeline.settings, "SELECT latency_ms FROM analytics_events FINAL", expected=1
    )
    # The worker has caught up with the good event, which was sent after the bad one.
    assert [row[0] for row in rows] == [5.0]
