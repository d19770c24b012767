"""Fixtures of the edge's unit tests: a fake producer and a client of the edge app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from blockbuster import BlockBuster
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from ingest.context import EDGE_CONTEXT, EdgeContext
from tests.ingest.support import FakeProducer, edge_app
from tests.support.postgres import Postgres, server_for_store

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def app(producer: FakeProducer) -> web.Application:
    return edge_app(producer)


@pytest.fixture
def edge(app: web.Application) -> EdgeContext:
    return app[EDGE_CONTEXT]


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_server(request: pytest.FixtureRequest) -> Postgres | None:
    return server_for_store(request)


@pytest.fixture
async def store_url(
    store_server: Postgres | None, tmp_path: Path, blockbuster: BlockBuster
) -> AsyncIterator[str]:
    """A migrated control-plane store of this test's own: SQLite, then PostgreSQL.

    PostgreSQL gets a fresh database on the session's server, dropped afterwards.
    """
    if store_server is None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'control.db'}"
        await upgrade(url)
        yield url
        return
    for function in blockbuster.functions.values():  # asyncpg stats ~/.pgpass when connecting
        function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")
    database = await asyncio.to_thread(store_server.create_database, "promptline_edge")
    try:
        url = store_server.url(database)
        await upgrade(url)
        yield url
    finally:
        await asyncio.to_thread(store_server.drop_database, database)


@pytest.fixture
async def sessions(store_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(store_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
