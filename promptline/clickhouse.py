"""ClickHouse clients from settings: the plain HTTP client, whatever server answers."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver import options
from clickhouse_connect.driver.asyncclient import AsyncClient

from promptline.settings import Settings


def _resolve_optional_libraries() -> None:
    # clickhouse-connect imports pandas, numpy, pyarrow and polars lazily, on the first
    # insert or query that looks for them: a blocking import of hundreds of
    # milliseconds. Doing it here, in a thread, keeps it off the event loop.
    for name in ("np", "pd", "arrow", "pl"):
        getattr(options, name)


async def connect(settings: Settings, database: str | None = None) -> AsyncClient:
    """An async client for ``settings.clickhouse_url``; ``database=""`` means the server default."""
    await asyncio.to_thread(_resolve_optional_libraries)
    url = urlsplit(settings.clickhouse_url)
    secure = url.scheme == "https"
    return await clickhouse_connect.get_async_client(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8443 if secure else 8123),
        secure=secure,
        username=url.username or settings.clickhouse_user,
        password=url.password or settings.clickhouse_password,
        database=settings.clickhouse_database if database is None else (database or None),
    )
