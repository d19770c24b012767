"""Harness of the control-plane API tests: the real routes over a real store, without Kafka.

The app is built the way ``promptline.server.create_app`` builds it (same error middleware
and dialects, same ``controlplane.api.add_routes``), with only the control plane's
resources: a migrated store (SQLite in a temporary folder, or a fresh PostgreSQL database
per test module, dropped afterwards), a ``CatalogWatcher`` over it and a rate limiter.
Tenants (organisation, project, keys) are created through ``controlplane.tenancy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from blockbuster import BlockBuster
from multidict import CIMultiDictProxy
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane import api
from controlplane.catalog import CatalogWatcher
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from controlplane.store.models import Organization
from controlplane.tenancy import ALL_SCOPES, create_api_key, create_organization, create_project
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from tests.support.postgres import Postgres

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
"""Parameters of every module's ``store_url`` fixture: the suite runs on both stores.

The fixtures take the PostgreSQL server with ``server_for_store`` (tests/support/postgres.py),
so a session starts one only when a PostgreSQL test runs."""

_NO_BODY: Any = object()


@contextlib.asynccontextmanager
async def migrated_store(postgres: Postgres | None, folder: Path) -> AsyncIterator[str]:
    """The URL of a freshly migrated store: a database of its own on ``postgres``, or SQLite."""
    if postgres is None:
        url = f"sqlite+aiosqlite:///{folder / 'control.db'}"
        await upgrade(url)
        yield url
        return
    database = await asyncio.to_thread(postgres.create_database, "promptline_api")
    try:
        url = postgres.url(database)
        await upgrade(url)
        yield url
    finally:
        await asyncio.to_thread(postgres.drop_database, database)


@dataclass(frozen=True, slots=True)
class Tenant:
    """An organisation with one project, and a key with every scope on that project."""

    org_id: uuid.UUID
    project_id: uuid.UUID
    key: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A response, read: status, parsed JSON body (None if empty) and headers."""

    status: int
    body: Any
    headers: CIMultiDictProxy[str]

    @property
    def code(self) -> str:
        """The error code of an error envelope."""
        code: str = self.body["error"]["code"]
        return code


class Api:
    """A running test app and helpers to set up tenants and call routes."""

    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        watcher: CatalogWatcher,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.client = client
        self.watcher = watcher
        self.sessions = sessions

    async def tenant(
        self, plan: str = "business", overrides: dict[str, Any] | None = None
    ) -> Tenant:
        """A new organisation on ``plan`` (business by default: limits out of the way)."""
        tag = uuid.uuid4().hex[:8]
        async with self.sessions() as session, session.begin():
            org = await create_organization(session, f"org-{tag}", plan)
            if overrides is not None:
                await session.execute(
                    update(Organization)
                    .where(Organization.id == org.id)
                    .values(limit_overrides=overrides)
                )
            project = await create_project(session, org.id, f"project-{tag}")
            issued = await create_api_key(session, project.id, ALL_SCOPES, "all")
        await self.watcher.refresh()
        return Tenant(org_id=org.id, project_id=project.id, key=issued.secret)

    async def key(self, tenant: Tenant, scopes: Iterable[str]) -> str:
        """Another key on the tenant's project, with only ``scopes``."""
        async with self.sessions() as session, session.begin():
            issued = await create_api_key(session, tenant.project_id, scopes, "limited")
        await self.watcher.refresh()
        return issued.secret

    async def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        *,
        json: Any = _NO_BODY,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send a request (JSON body, raw body or none) and read the reply."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        kwargs: dict[str, Any] = {"headers": sent, "params": params}
        if json is not _NO_BODY:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data
        async with self.client.request(method, path, **kwargs) as response:
            raw = await response.read()
            body = await response.json() if raw else None
            return Reply(response.status, body, response.headers)

    async def prompt(self, tenant: Tenant, name: str, *contents: str) -> dict[str, Any]:
        """Create a prompt through ``POST /v1/prompts`` and push ``contents`` as versions."""
        created = await self.call("POST", "/v1/prompts", tenant.key, json={"name": name})
        assert created.status == 201, created.body
        for content in contents:
            pushed = await self.call(
                "POST",
                f"/v1/prompts/{created.body['id']}/versions",
                tenant.key,
                json={"content": content},
            )
            assert pushed.status == 201, pushed.body
        body: dict[str, Any] = created.body
        return body


def allow_pg_connect_probes(detector: BlockBuster) -> None:
    """Let asyncpg probe for ``~/.pgpass`` and ``~/.postgresql`` files when it connects.

    It parses its connection arguments with a few ``stat`` calls per new connection: not
    our code and not worth a thread, so only that function of asyncpg is let through.
    """
    for function in detector.functions.values():
        function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")


@contextlib.asynccontextmanager
async def open_api(store_url: str, redis_url: str = "") -> AsyncIterator[Api]:
    """The control-plane routes served over ``store_url``, with a fresh rate limiter."""
    engine = create_engine(store_url)
    sessions = session_factory(engine)
    watcher = CatalogWatcher(sessions)
    limiter = await api.RateLimiter.open(redis_url)
    try:
        await watcher.start()
        app = web.Application(middlewares=[error_middleware(dialect_for)])
        api.add_routes(app)
        app[api.CONTROL_PLANE] = api.ControlPlane(catalog=watcher, limiter=limiter)
        async with TestClient(TestServer(app)) as client:
            yield Api(client, watcher, sessions)
    finally:
        await limiter.close()
        await watcher.stop()
        await engine.dispose()
