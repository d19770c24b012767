"""The ClickHouse side of a worker: columnar block inserts and lookups, retried while that can help.

A worker cannot make progress without ClickHouse, and giving up would mean committing
offsets for data that is not stored, so a call that fails for want of ClickHouse (no
connection, a timeout, a server overloaded, out of memory, read-only, restarting: anything
not known to be about the data) is retried with backoff, forever. Retrying an insert is safe
because it carries the same deduplication token, and the token reaches the materialized
views too (``deduplicate_blocks_in_dependent_materialized_views``): an insert that landed in
the raw table but failed in a view lands in the view on retry.

An insert ClickHouse refuses for its data (a value out of its column's range, a constraint,
a value the driver cannot encode) would fail the same way forever and hold its partition
still, so it raises :class:`Refused` instead: the caller dead-letters the block's records
with the reason and goes on (``workers/coordinator.py``). Only errors known to be about the
data count; an unknown error is retried, since waiting is safe and dropping is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.exceptions import DatabaseError, DataError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")

DATA_ERROR_CODES: dict[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    131: "TOO_LARGE_STRING_SIZE",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
    407: "DECIMAL_OVERFLOW",
    469: "VIOLATED_CONSTRAINT",
    691: "UNKNOWN_ELEMENT_OF_ENUM",
}
"""ClickHouse errors about an insert's data: the same block fails the same way every time."""

ENCODING_ERRORS = (DataError, TypeError, ValueError, OverflowError)
"""What the driver raises when a row's values cannot be encoded as its columns' types."""

MAX_REASON_CHARS = 500


class Refused(Exception):
    """ClickHouse (or its driver) refused an insert for its data; retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refused_for_its_data(error: BaseException) -> bool:
    """Whether ``error``, raised by an insert, is about the data rather than the server."""
    code = getattr(error, "code", None)
    if isinstance(error, DatabaseError) and code in DATA_ERROR_CODES:
        return True  # also when raised as OperationalError after a retried request
    return isinstance(error, ENCODING_ERRORS)


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
        """Insert until ClickHouse accepts; offsets are committed only after this returns.

        Raises :class:`Refused` if ClickHouse refuses the rows themselves.
        """
        await self._retry(
            f"insert of {len(rows)} rows into {table}",
            lambda: self._client.insert(
                table, rows, column_names=list(columns), settings=insert_settings(token)
            ),
            refusable=True,
        )

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of a query, retried until ClickHouse answers."""
        result = await self._retry(
            "query", lambda: self._client.query(sql, parameters=parameters, settings=settings)
        )
        return result.result_rows

    async def _retry(
        self, what: str, call: Callable[[], Awaitable[T]], refusable: bool = False
    ) -> T:
        backoff = self._first_backoff
        while True:
            try:
                return await call()
            except Exception as error:
                if refusable and refused_for_its_data(error):
                    log.error("%s refused for its data: %r", what, error)
                    raise Refused(f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]) from error
                log.warning("%s failed (%r); retrying in %.1fs", what, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def close(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()
