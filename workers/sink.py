"""The ClickHouse side of a worker: columnar block inserts and lookups, retried until they land.

A worker cannot make progress without ClickHouse, and giving up would mean committing
offsets for data that is not stored, so every call is retried with backoff, forever.
Retrying an insert is safe because it carries the same deduplication token, and the
token reaches the materialized views too (``deduplicate_blocks_in_dependent_materialized_views``):
an insert that landed in the raw table but failed in a view lands in the view on retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from clickhouse_connect.driver.asyncclient import AsyncClient

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")


def insert_settings(token: str) -> dict[str, Any]:
    """Settings of every block insert: deduplicated by ``token`` in the table and its views."""
    return {
        "async_insert": 0,  # a server-side buffer would cut blocks of its own
        "insert_deduplicate": 1,
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


class ClickHouseSink:
    """Inserts a block with a deduplication token, so a retry of the same block is a no-op."""

    def __init__(self, client: AsyncClient, first_backoff: float = 0.2) -> None:
        self._client = client
        self._first_backoff = first_backoff

    async def write(
        self, table: str, columns: Sequence[str], rows: list[list[Any]], token: str
    ) -> None:
        """Insert until ClickHouse accepts; offsets are committed only after this returns."""
        await self._retry(
            f"insert of {len(rows)} rows into {table}",
            lambda: self._client.insert(
                table, rows, column_names=list(columns), settings=insert_settings(token)
            ),
        )

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of a query, retried until ClickHouse answers."""
        result = await self._retry(
            "query", lambda: self._client.query(sql, parameters=parameters, settings=settings)
        )
        return result.result_rows

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        backoff = self._first_backoff
        while True:
            try:
                return await call()
            except Exception as error:
                log.warning("%s failed (%r); retrying in %.1fs", what, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def close(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()
