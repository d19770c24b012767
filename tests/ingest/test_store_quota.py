"""The monthly signal quota in the store: exactly the limit, however many requests race."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.catalog import CatalogWatcher
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import SignalQuotaUsage
from ingest.node_lease import NodeLease
from ingest.quota_claims import GrantKind
from ingest.quota_store import StoreQuota
from ingest.signal_ids import SignalIdGenerator, decompose
from tests.ingest.store import Tenant, seed_tenant
from tests.ingest.support import FakeProducer, edge_app

ROOT = Path(__file__).resolve().parents[2]
MONTH = "2026-11"


async def _used(sessions: async_sessionmaker[AsyncSession], tenant: Tenant, month: str) -> int:
    async with sessions() as session:
        used = await session.scalar(
            select(SignalQuotaUsage.used).where(
                SignalQuotaUsage.org_id == tenant.org_id, SignalQuotaUsage.month == month
            )
        )
    return int(used or 0)


async def _charged(quota: StoreQuota, tenant: Tenant, month: str, limit: int, count: int) -> int:
    """Reserve ``count`` signals without keys; how many were charged."""
    grants = await quota.reserve(tenant.org_id, month, limit, [None] * count)
    return sum(grant.kind is GrantKind.CHARGED for grant in grants)


async def test_concurrent_reservations_from_two_engines_get_exactly_the_limit(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> None:
    tenant = await seed_tenant(sessions)
    other_engine = create_engine(store_url)
    try:
        first, second = StoreQuota(sessions), StoreQuota(session_factory(other_engine))
        grants = await asyncio.gather(
            *(_charged(quota, tenant, MONTH, 100, 1) for quota in (first, second) * 150)
        )
    finally:
        await other_engine.dispose()
    assert sum(grants) == 100 and set(grants) == {0, 1}
    assert await _used(sessions, tenant, MONTH) == 100


async def test_separate_processes_together_get_exactly_the_limit(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> None:
    tenant = await seed_tenant(sessions)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ingest.quota_hammer",
            store_url,
            str(tenant.org_id),
            MONTH,
            "120",
            "100",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    assert sum(int(stdout) for stdout, _ in outputs) == 120
    assert await _used(sessions, tenant, MONTH) == 120


async def test_a_group_gets_what_is_left_first_come_first_served_and_can_give_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    assert await _charged(quota, tenant, MONTH, 10, 7) == 7
    assert await _charged(quota, tenant, MONTH, 10, 5) == 3
    assert await _charged(quota, tenant, MONTH, 10, 1) == 0
    await quota.release(tenant.org_id, MONTH, 4)
    assert await _used(sessions, tenant, MONTH) == 6
    assert await _charged(quota, tenant, MONTH, 10, 9) == 4
    assert await _charged(quota, tenant, MONTH, 12, 9) == 2  # the limit was raised
    assert await _charged(quota, tenant, "2026-12", 10, 3) == 3  # a new month
    assert await _used(sessions, tenant, MONTH) == 12


async def test_concurrent_reservations_are_coalesced_into_few_statements(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> None:
    tenant = await seed_tenant(sessions)
    engine = create_engine(store_url)
    updates: list[str] = []

    def count(*args: Any) -> None:
        statement = args[2]
        if statement.lstrip().upper().startswith("UPDATE SIGNAL_QUOTA_USAGE"):
            updates.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        quota = StoreQuota(session_factory(engine))
        grants = await asyncio.gather(
            *(_charged(quota, tenant, MONTH, 1000, 1) for _ in range(200))
        )
    finally:
        await engine.dispose()
    assert sum(grants) == 200
    assert 1 <= len(updates) < 200 / 4


@pytest.fixture
async def two_edges(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> AsyncIterator[
    tuple[Tenant, list[FakeProducer], list[TestClient[web.Request, web.Application]]]
]:
    """Two edge apps, each with its own engine (as two processes have), on one store."""
    tenant = await seed_tenant(sessions, overrides={"signals_per_month": 25})
    engines = [create_engine(store_url) for _ in range(2)]
    producers = [FakeProducer(), FakeProducer()]
    clients, leases = [], []
    for engine, producer in zip(engines, producers, strict=True):
        watcher = CatalogWatcher(session_factory(engine))
        await watcher.refresh()
        lease = NodeLease(watcher.sessions, ttl_seconds=30)
        await lease.start()
        leases.append(lease)
        app = edge_app(
            producer,
            watcher.current,
            quota=StoreQuota(watcher.sessions),
            signal_ids=SignalIdGenerator(lease),
        )
        clients.append(TestClient(TestServer(app)))
    try:
        for client in clients:
            await client.start_server()
        yield tenant, producers, clients
    finally:
        for client in clients:
            await client.close()
        for lease in leases:
            await lease.stop(0)
        for engine in engines:
            await engine.dispose()


async def test_concurrent_signal_requests_on_two_edges_accept_exactly_the_limit(
    two_edges: tuple[Tenant, list[FakeProducer], list[TestClient[web.Request, web.Application]]],
) -> None:
    tenant, producers, clients = two_edges
    headers = {"Authorization": f"Bearer {tenant.key}"}
    url = f"/api/v1/prompts/{tenant.prompt_name}/signals"
    responses = await asyncio.gather(
        *(client.post(url, json={"value": "positive"}, headers=headers) for client in clients * 40)
    )
    statuses = sorted(response.status for response in responses)
    assert statuses.count(201) == 25 and statuses.count(429) == 55
    assert sum(len(producer.sent) for producer in producers) == 25
    ids = [record["signal_id"] for producer in producers for record in producer.records()]
    assert len(set(ids)) == 25
    nodes = [{decompose(r["signal_id"])[1] for r in producer.records()} for producer in producers]
    assert not nodes[0] & nodes[1]  # each edge leased a node number of its own
