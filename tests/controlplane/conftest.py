"""Fixtures every control-plane test module shares: a store of each kind, the routes, a tenant.

``store_url`` is module-scoped (one migrated store per module and kind: migrating is the
slow part) and parametrized over SQLite and PostgreSQL (the session's server, started on
first use), so every test that uses it runs on both; ``fresh_store_url`` is a store of
its own per test, for tests that read the whole store back. ``api`` serves the
control-plane routes over the module's store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from blockbuster import BlockBuster
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.engine import create_engine, session_factory
from tests.controlplane.test_api_harness import (
    STORES,
    Api,
    Tenant,
    allow_pg_connect_probes,
    migrated_store,
    open_api,
)
from tests.support.postgres import Postgres, server_for_store


@pytest.fixture(scope="module", params=STORES)
def module_store_server(request: pytest.FixtureRequest) -> Postgres | None:
    return server_for_store(request)


@pytest.fixture(params=STORES)
def fresh_store_server(request: pytest.FixtureRequest) -> Postgres | None:
    return server_for_store(request)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store_url(
    module_store_server: Postgres | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with migrated_store(module_store_server, tmp_path_factory.mktemp("store")) as url:
        yield url


@pytest.fixture
async def fresh_store_url(
    fresh_store_server: Postgres | None, tmp_path: Path, blockbuster: BlockBuster
) -> AsyncIterator[str]:
    allow_pg_connect_probes(blockbuster)
    async with migrated_store(fresh_store_server, tmp_path) as url:
        yield url


@pytest.fixture
async def sessions(fresh_store_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(fresh_store_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def api(store_url: str, blockbuster: BlockBuster) -> AsyncIterator[Api]:
    allow_pg_connect_probes(blockbuster)
    async with open_api(store_url) as harness:
        yield harness


@pytest.fixture
async def tenant(api: Api) -> Tenant:
    return await api.tenant()
