"""ClickHouse clients for the HTTP service, made on first use and shared by requests.

The service must start, and serve resolve and the edge, while ClickHouse is down, so no
client is made at startup. A clickhouse-connect client runs one query at a time (it
carries a session), so each query borrows a client of a small pool: a comparison's
queries run side by side, and concurrent requests share the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from promptline.clickhouse import connect
from promptline.settings import Settings

POOL_SIZE = 8


class Warehouse:
    """A lazily filled pool of ClickHouse clients."""

    def __init__(self, settings: Settings, size: int = POOL_SIZE) -> None:
        self._settings = settings
        self._idle: asyncio.Queue[AsyncClient] = asyncio.Queue()
        self._slots = asyncio.Semaphore(size)
        self._all: list[AsyncClient] = []

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncClient]:
        """Borrow a client for a few sequential queries."""
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            if client is None:
                client = await connect(self._settings)
                self._all.append(client)
            try:
                yield client
            finally:
                self._idle.put_nowait(client)

    async def rows(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """Run one query on a borrowed client."""
        async with self.client() as client:
            return (await client.query(sql, parameters=parameters)).result_rows

    async def close(self) -> None:
        """Close every client made."""
        clients, self._all = self._all, []
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


WAREHOUSE = web.AppKey("warehouse", Warehouse)
