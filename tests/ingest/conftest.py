"""Fixtures of the edge's unit tests: a fake producer and a client of the edge app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from blockbuster import BlockBuster
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from ingest.context import EDGE_CONTEXT, EdgeContext
from tests.ingest.support import FakeProducer, edge_app

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


PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, blockbuster: BlockBuster
) -> AsyncIterator[str]:
    """A migrated control-plane store of this test's own: SQLite, then PostgreSQL.

    PostgreSQL gets a fresh database, dropped afterwards; skipped if no server answers.
    """
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'control.db'}"
        await upgrade(url)
        yield url
        return
    for function in blockbuster.functions.values():  # asyncpg stats ~/.pgpass when connecting
        function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")
    admin = create_async_engine(
        PG_URL.format(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 3},
    )
    database = f"promptline_edge_{uuid.uuid4().hex[:12]}"
    try:
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{database}"'))
        except (OSError, TimeoutError, DBAPIError) as error:
            pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {error!r}")
        url = PG_URL.format(database=database)
        try:
            await upgrade(url)
            yield url
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def sessions(store_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(store_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
