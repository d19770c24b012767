"""The whole service against a real broker: what every edge route puts in Kafka."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controlplane.ids import IdShape, encode
from controlplane.store.engine import create_engine, session_factory
from ingest.batch_keys import content_digest
from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind
from tests.ingest.kafka_reader import read_topic
from tests.ingest.store import Tenant, seed_tenant

pytestmark = [pytest.mark.kafka]

Client = TestClient[web.Request, web.Application]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def demo(migrated: Settings) -> dict[str, Any]:
    return await quickstart(migrated)


@pytest.fixture
async def client(migrated: Settings, demo: dict[str, Any]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(migrated))) as test_client:
        yield test_client


async def test_every_route_puts_complete_records_in_kafka(
    migrated: Settings, demo: dict[str, Any], client: Client
) -> None:
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    prompt = uuid.UUID(demo["prompt_id"])
    trace, span = uuid.uuid4(), uuid.uuid4()

    signal = await client.post(
        f"/api/v1/prompts/{encode(IdShape.SIGNAL_PROMPT, prompt)}/signals",
        json={"value": "positive", "metadata": {"session_id": "sess_1", "n": 3}},
        headers={**headers, "Idempotency-Key": "sig-1"},
    )
    assert signal.status == 201
    signal_data = (await signal.json())["data"]
    usage = await client.post(
        "/dashboard/prompts/usage",
        json={
            "name": demo["prompt_name"],
            "version": 1,
            "trace_id": str(trace),
            "span_id": str(span),
        },
        headers=headers,
    )
    assert (usage.status, await usage.json()) == (201, {"status": "recorded"})
    analytics = await client.post(
        "/api/v1/prompts/analytics",
        json={
            "prompt_id": demo["prompt_id"],
            "version_hash": demo["version_hash"],
            "cost_usd": 0.5,
        },
        headers={**headers, "Idempotency-Key": "call-1"},
    )
    assert analytics.status == 204
    batch_events: list[dict[str, Any]] = [
        {"type": "signal", "prompt_id": demo["prompt_name"], "value": "negative"},
        {"type": "usage", "name": demo["prompt_name"], "version": 1, "trace_id": str(trace)},
        {
            "type": "analytics",
            "prompt_id": demo["prompt_id"],
            "version_hash": demo["version_hash"],
            "latency_ms": 7,
            "idempotency_key": "call-2",
        },
        {"type": "signal", "prompt_id": demo["prompt_name"], "value": "maybe"},
    ]
    batch = await client.post(
        "/api/v1/events/batch",
        json={"events": batch_events},
        headers={**headers, "Idempotency-Key": "batch-1"},
    )
    assert batch.status == 207
    results = (await batch.json())["results"]
    assert [r["status"] for r in results] == [201, 201, 204, 422]

    signals = await read_topic(migrated, EventKind.SIGNAL, expected=2)
    usages = await read_topic(migrated, EventKind.USAGE, expected=2)
    calls = await read_topic(migrated, EventKind.ANALYTICS, expected=2)
    assert len(signals) == 2 and len(usages) == 2 and len(calls) == 2
    for record in signals + usages + calls:
        assert record["_key"] == demo["prompt_id"]
        assert record["v"] == 1 and record["org_id"] == demo["org_id"]
        assert record["project_id"] == demo["project_id"]
        assert uuid.UUID(record["event_id"]).version == 7

    by_id = {record["signal_id"]: record for record in signals}
    single = by_id[signal_data["id"]]
    assert single["value"] == "positive" and single["idempotency_key"] == "sig-1"
    assert single["metadata"] == {"session_id": "sess_1", "n": 3}
    assert _instant(single["received_at"]) == _instant(signal_data["created_at"])
    batched = by_id[results[0]["id"]]
    assert batched["value"] == "negative"
    assert batched["idempotency_key"] == f"batch-1:{content_digest(batch_events[0])}"
    assert batched["event_id"] == results[0]["event_id"]

    keys = sorted(record["idempotency_key"] for record in usages)
    assert keys == sorted([f"usage:{prompt}:1:{trace}:{span}", f"usage:{prompt}:1:{trace}:"])
    assert {record["version_hash"] for record in usages} == {demo["version_hash"]}
    assert {record["idempotency_key"] for record in calls} == {"call-1", "call-2"}


async def test_analytics_body_idempotency_key_reaches_the_kafka_record(
    migrated: Settings, demo: dict[str, Any], client: Client
) -> None:
    """Seed 004's body is open: a key in it is ours, not silently ignored."""
    response = await client.post(
        "/api/v1/prompts/analytics",
        json={
            "prompt_id": demo["prompt_id"],
            "version_hash": demo["version_hash"],
            "latency_ms": 12.5,
            "idempotency_key": "body-key-1",
        },
        headers={"Authorization": f"Bearer {demo['api_key']}"},
    )
    assert response.status == 204
    [record] = await read_topic(migrated, EventKind.ANALYTICS, expected=1)
    assert record["idempotency_key"] == "body-key-1" and record["latency_ms"] == 12.5
    assert record["_key"] == demo["prompt_id"]


async def test_signals_over_the_monthly_limit_never_reach_kafka(migrated: Settings) -> None:
    engine = create_engine(migrated.database_url)
    try:
        tenant: Tenant = await seed_tenant(
            session_factory(engine),
            overrides={
                "signals_per_month": 20,
                # the request rate is not what this test is about
                "POST /api/v1/prompts/:prompt_id/signals": "1000/second",
            },
        )
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    url = f"/api/v1/prompts/{encode(IdShape.SIGNAL_PROMPT, tenant.prompt_id)}/signals"
    async with TestClient(TestServer(create_app(migrated))) as client:
        responses = await asyncio.gather(
            *(client.post(url, json={"value": "positive"}, headers=headers) for _ in range(60))
        )
        statuses = [response.status for response in responses]
        accepted = {(await r.json())["data"]["id"] for r in responses if r.status == 201}
        refusals = {(await r.json())["error"]["message"] for r in responses if r.status == 429}
    assert statuses.count(201) == 20 and statuses.count(429) == 40
    assert all(message.startswith("Monthly signal limit of 20") for message in refusals)
    records = await read_topic(migrated, EventKind.SIGNAL, expected=20, within=10)
    assert {record["signal_id"] for record in records} == accepted


async def test_oversize_bodies_are_413_envelopes_on_every_route_that_reads_one(
    demo: dict[str, Any], client: Client
) -> None:
    """The edge's routes (own limits) and the control plane's (aiohttp's client_max_size)."""
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    body = b'{"x": "' + b"y" * (6 * 1024 * 1024) + b'"}'
    paths = [
        f"/api/v1/prompts/{demo['prompt_name']}/signals",
        "/dashboard/prompts/usage",
        "/api/v1/prompts/analytics",
        "/api/v1/events/batch",
        "/v1/resolve",
        "/v1/prompts",
        f"/v1/prompts/{demo['prompt_id']}/versions",
        "/dashboard/prompts",
        "/api/v1/prompt-templates",
    ]
    for path in paths:
        response = await client.post(path, data=io.BytesIO(body), headers=headers)
        assert response.status == 413, path
        error = (await response.json())["error"]
        assert error["code"].lower() == "payload_too_large", path
        assert error["message"], path
