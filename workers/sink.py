"""The ClickHouse side of a worker: columnar batch inserts, retried until they land."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class ClickHouseSink:
    """Inserts a batch with a deduplication token, so a retry of the same batch is a no-op."""

    def __init__(self, client: AsyncClient, first_backoff: float = 0.2) -> None:
        self._client = client
        self._first_backoff = first_backoff

    async def write(
        self, table: str, columns: tuple[str, ...], rows: list[list[Any]], token: str
    ) -> None:
        """Insert until ClickHouse accepts; offsets are committed only after this returns."""
        backoff = self._first_backoff
        while True:
            try:
                await self._client.insert(
                    table,
                    rows,
                    column_names=list(columns),
                    settings={"insert_deduplication_token": token},
                )
                return
            except Exception as error:
                log.warning(
                    "insert of %d rows into %s failed (%r); retrying", len(rows), table, error
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def close(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()
