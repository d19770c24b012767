"""A retried signal (same Idempotency-Key) is charged once and answered as the first time.

The routes over the store-backed quota, on SQLite and PostgreSQL, with a fake producer
(what reaches Kafka is checked against a real broker elsewhere; here it is the charge).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from controlplane.catalog import CatalogWatcher
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import SignalQuotaUsage
from ingest.node_lease import NodeLease
from ingest.quota_store import StoreQuota
from ingest.signal_ids import SignalIdGenerator
from tests.ingest.store import Tenant, seed_tenant
from tests.ingest.support import FakeProducer, edge_app

Client = TestClient[web.Request, web.Application]
LIMIT = 5


@dataclass
class Edge:
    """One edge process: its client and its producer."""

    client: Client
    producer: FakeProducer


@dataclass
class Edges:
    tenant: Tenant
    edges: list[Edge]
    sessions: async_sessionmaker[AsyncSession]

    async def used(self) -> int:
        async with self.sessions() as session:
            used = await session.scalar(
                select(SignalQuotaUsage.used).where(SignalQuotaUsage.org_id == self.tenant.org_id)
            )
        return int(used or 0)

    async def signal(
        self, key: str | None, value: str = "positive", edge: int = 0, path: str | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.tenant.key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await self.edges[edge].client.post(
            path or f"/api/v1/prompts/{self.tenant.prompt_name}/signals",
            json={"value": value},
            headers=headers,
        )
        return response.status, await response.json()


@pytest.fixture
async def edges(sessions: async_sessionmaker[AsyncSession], store_url: str) -> AsyncIterator[Edges]:
    """Two edges, each with an engine of its own (as two processes have), on one store."""
    tenant = await seed_tenant(sessions, overrides={"signals_per_month": LIMIT})
    engines: list[AsyncEngine] = [create_engine(store_url) for _ in range(2)]
    built: list[Edge] = []
    leases: list[NodeLease] = []
    try:
        for engine in engines:
            watcher = CatalogWatcher(session_factory(engine))
            await watcher.refresh()
            lease = NodeLease(watcher.sessions, ttl_seconds=30)
            await lease.start()
            leases.append(lease)
            producer = FakeProducer()
            app = edge_app(
                producer,
                watcher.current,
                quota=StoreQuota(watcher.sessions),
                signal_ids=SignalIdGenerator(lease),
            )
            client = TestClient(TestServer(app))
            await client.start_server()
            built.append(Edge(client, producer))
        yield Edges(tenant, built, sessions)
    finally:
        for edge in built:
            await edge.client.close()
        for lease in leases:
            await lease.stop(0)
        for engine in engines:
            await engine.dispose()


async def test_a_retry_gets_the_first_answer_and_is_not_charged_again(edges: Edges) -> None:
    first = await edges.signal("click-42")
    assert first[0] == 201
    for edge in (0, 1, 1):  # on either process
        assert await edges.signal("click-42", edge=edge) == first
    # A different value under the same key is the same signal: the first one is kept.
    assert await edges.signal("click-42", value="negative") == first
    assert await edges.used() == 1
    # Every retry was produced again, as a copy of the first (the warehouse keeps one).
    records = [r for edge in edges.edges for r in edge.producer.records()]
    assert len(records) == 5
    assert {(r["signal_id"], r["received_at"], r["value"]) for r in records} == {
        (first[1]["data"]["id"], first[1]["data"]["created_at"], "positive")
    }
    assert {r["idempotency_key"] for r in records} == {"click-42"}
    # Any id shape of the same prompt names the same signal.
    by_id = f"/api/v1/prompts/{edges.tenant.prompt_id}/signals"
    assert await edges.signal("click-42", path=by_id) == first


async def test_signals_without_a_key_are_each_charged(edges: Edges) -> None:
    answers = [await edges.signal(None) for _ in range(3)]
    assert [status for status, _body in answers] == [201] * 3
    assert len({body["data"]["id"] for _status, body in answers}) == 3
    assert await edges.used() == 3


async def test_concurrent_requests_with_one_key_on_two_edges_are_charged_once(
    edges: Edges,
) -> None:
    answers = await asyncio.gather(*(edges.signal("same", edge=n % 2) for n in range(30)))
    assert {status for status, _body in answers} == {201}
    assert len({(b["data"]["id"], b["data"]["created_at"]) for _s, b in answers}) == 1
    assert await edges.used() == 1


async def test_a_retry_is_answered_after_the_limit_is_reached_and_new_keys_are_not(
    edges: Edges,
) -> None:
    answers = [await edges.signal(f"k{n}") for n in range(LIMIT)]
    assert [status for status, _body in answers] == [201] * LIMIT
    status, body = await edges.signal("k-new")
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert await edges.signal("k0", edge=1) == answers[0]
    assert await edges.used() == LIMIT


async def test_a_signal_kafka_refused_is_not_charged_and_its_retry_is_new(edges: Edges) -> None:
    edges.edges[0].producer.fails = lambda _record: True
    status, body = await edges.signal("retry-me")
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert await edges.used() == 0  # given back, key forgotten
    edges.edges[0].producer.fails = lambda _record: False
    status, body = await edges.signal("retry-me")
    assert status == 201
    assert await edges.signal("retry-me", edge=1) == (status, body)
    assert await edges.used() == 1


async def test_a_retried_batch_is_charged_once_and_answered_the_same_ids(edges: Edges) -> None:
    headers = {"Authorization": f"Bearer {edges.tenant.key}", "Idempotency-Key": "batch-7"}
    events = [
        {"type": "signal", "prompt_id": edges.tenant.prompt_name, "value": "positive"},
        {"type": "signal", "prompt_id": edges.tenant.prompt_name, "value": "negative"},
        {
            "type": "signal",
            "prompt_id": edges.tenant.prompt_name,
            "value": "positive",
            "idempotency_key": "own",
        },
    ]
    bodies = []
    for edge in (0, 1):
        response = await edges.edges[edge].client.post(
            "/api/v1/events/batch", json={"events": events}, headers=headers
        )
        assert response.status == 200
        bodies.append(await response.json())
    assert [r["id"] for r in bodies[0]["results"]] == [r["id"] for r in bodies[1]["results"]]
    assert len({r["id"] for r in bodies[0]["results"]}) == 3
    assert await edges.used() == 3
    # The single route's retry of the batch event with its own key is the same signal too.
    status, body = await edges.signal("own")
    assert (status, body["data"]["id"]) == (201, bodies[0]["results"][2]["id"])
    assert await edges.used() == 3
