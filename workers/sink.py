"""The ClickHouse side of a worker: block inserts, lookups and deletes, retried while that helps.

A worker cannot make progress without ClickHouse, and giving up would mean committing
offsets for data that is not stored, so a call that fails for want of ClickHouse (no
connection, a timeout, a server overloaded, out of memory, read-only, restarting, a proxy's
answer without a ClickHouse error code) is retried with backoff, for as long as the worker
runs. Retrying an insert is safe because it carries the same deduplication token, and the
token reaches the materialized views too (``deduplicate_blocks_in_dependent_materialized_views``):
an insert that landed in the raw table but failed in a view lands in the view on retry.

Any other error the server raised about an insert, whatever its code, and any value the driver
cannot encode, is about the insert itself: :meth:`ClickHouseSink.write` raises :class:`Refused`
for it, and the block writer finds the records at fault by splitting (``workers/writer.py``).
Waits between attempts end early when the worker is told to stop (:meth:`interrupt`), so a
stopping worker never sits out a backoff: :class:`Interrupted` tells its caller to give up the
flush without committing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, ProgrammingError
from clickhouse_connect.driver.external import ExternalData

from workers.native import NativeBlock
from workers.progress import Hold, Progress

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")

UNREACHABLE_CODES: dict[int, str] = {
    3: "UNEXPECTED_END_OF_FILE",
    23: "CANNOT_READ_FROM_ISTREAM",
    24: "CANNOT_WRITE_TO_OSTREAM",
    32: "ATTEMPT_TO_READ_AFTER_EOF",
    159: "TIMEOUT_EXCEEDED",
    160: "TOO_SLOW",
    164: "READONLY",
    173: "CANNOT_ALLOCATE_MEMORY",
    192: "UNKNOWN_USER",
    193: "WRONG_PASSWORD",
    198: "DNS_ERROR",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    203: "NO_FREE_CONNECTION",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    225: "NO_ZOOKEEPER",
    236: "ABORTED",
    241: "MEMORY_LIMIT_EXCEEDED",
    242: "TABLE_IS_READ_ONLY",
    243: "NOT_ENOUGH_SPACE",
    252: "TOO_MANY_PARTS",
    319: "UNKNOWN_STATUS_OF_INSERT",
    394: "QUERY_WAS_CANCELLED",
    425: "SYSTEM_ERROR",
    439: "CANNOT_SCHEDULE_TASK",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    999: "KEEPER_EXCEPTION",
    1000: "POCO_EXCEPTION",
}
"""ClickHouse errors about reaching or running the server, not about any insert: retried."""

SCHEMA_CODES: dict[int, str] = {
    10: "NOT_FOUND_COLUMN_IN_BLOCK",
    16: "NO_SUCH_COLUMN_IN_TABLE",
    46: "UNKNOWN_FUNCTION",
    47: "UNKNOWN_IDENTIFIER",
    60: "UNKNOWN_TABLE",
    81: "UNKNOWN_DATABASE",
    218: "TABLE_IS_DROPPED",
}
"""Errors about the warehouse's schema: every record would fail alike, so splitting the block
to find the records at fault would only cost inserts (``workers/writer.py``)."""

ENCODING_ERRORS = (DataError, ProgrammingError, TypeError, ValueError, OverflowError)
"""What the driver raises when a row's values cannot be encoded as its columns' types, or the
rows do not match the columns: about the insert, never about reaching ClickHouse."""

MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class Table:
    """Rows a query reads as a table of its own (ClickHouse's external data), in ``fmt``.

    A lookup of thousands of keys sends them as data the server reads in bulk, rather than
    as literals its SQL parser must take one by one (``workers/dedup.py``).
    """

    structure: str
    data: bytes
    fmt: str = "TabSeparated"


class Refused(Exception):
    """ClickHouse (or its driver) refused an insert itself; retrying the same rows cannot help.

    ``code`` is ClickHouse's error code, None for the driver's encoding errors.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    @property
    def about_the_schema(self) -> bool:
        """Whether every record would be refused alike (``SCHEMA_CODES``)."""
        return self.code in SCHEMA_CODES


class Interrupted(Exception):
    """The worker is stopping: a wait before the next attempt was cut short."""


def refused_for_its_data(error: BaseException) -> bool:
    """Whether ``error``, raised by an insert, is about the insert rather than reaching the
    server: any ClickHouse error code not about the server, or an encoding error."""
    code = getattr(error, "code", None)
    if isinstance(error, DatabaseError) and code is not None:
        return code not in UNREACHABLE_CODES  # also when raised after a retried request
    return isinstance(error, ENCODING_ERRORS)


def failure_label(error: BaseException) -> str:
    """A short, bounded label of a failed call for the metrics: the ClickHouse error name,
    ``encoding`` or ``unreachable``."""
    code = getattr(error, "code", None)
    if isinstance(error, DatabaseError) and code is not None:
        return UNREACHABLE_CODES.get(code) or SCHEMA_CODES.get(code) or f"code_{code}"
    return "encoding" if isinstance(error, ENCODING_ERRORS) else "unreachable"


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

    def __init__(
        self, client: AsyncClient, first_backoff: float = 0.2, progress: Progress | None = None
    ) -> None:
        self._client = client
        self._first_backoff = first_backoff
        self._progress = progress or Progress()
        self._interrupted = asyncio.Event()
        self._blocks: dict[tuple[str, ...], tuple[Sequence[ClickHouseType], NativeBlock]] = {}

    def report_to(self, progress: Progress) -> None:
        """Report failed calls and waits to ``progress`` (the worker's health and metrics)."""
        self._progress = progress

    def interrupt(self) -> None:
        """Cut short every wait from now on: the worker is stopping."""
        self._interrupted.set()

    @property
    def first_backoff(self) -> float:
        """The first wait after a failure; each further one doubles, up to 30 seconds."""
        return self._first_backoff

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before another attempt; raises :class:`Interrupted` if the worker
        is told to stop meanwhile (or was already)."""
        if self._interrupted.is_set():
            raise Interrupted
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._interrupted.wait(), seconds)
        if self._interrupted.is_set():
            raise Interrupted

    async def write(
        self, table: str, columns: Sequence[str], rows: list[list[Any]], token: str
    ) -> None:
        """Insert until ClickHouse accepts; offsets are committed only after this returns.

        Raises :class:`Refused` if ClickHouse refuses the insert itself.
        """
        await self._retry(
            f"insert of {len(rows)} rows into {table}",
            lambda: self._insert(table, list(columns), rows, token),
            refusable=True,
        )
        self._progress.stored()

    async def _insert(
        self, table: str, columns: list[str], rows: list[list[Any]], token: str
    ) -> None:
        """One insert, with the columns' types as last read: asking the server for them before
        every insert cost a round trip per block (a tenth of a flush's time on the local
        server). A failed insert forgets them, so a table altered meanwhile is read again.
        The rows go as columns, turned by ``zip`` in C; rows of unequal length are refused,
        never cut short. The raw tables' types are encoded here a column at a time
        (``workers/native.py``), any other table by the driver."""
        if not rows:
            return
        key = (table, *columns)
        block = self._blocks.get(key)
        if block is None:
            context = await self._client.create_insert_context(table, columns)
            types = context.column_types
            block = self._blocks[key] = (
                types,
                NativeBlock(columns, [kind.insert_name for kind in types]),
            )
        types, native = block
        try:
            data = list(zip(*rows, strict=True))
            if native.complete:
                await self._client.raw_insert(
                    table,
                    columns,
                    native.encode(data),
                    settings=insert_settings(token),
                    fmt="Native",
                )
                return
            await self._client.insert(
                table,
                data,
                column_names=columns,
                column_types=types,
                column_oriented=True,
                settings=insert_settings(token),
            )
        except BaseException:
            self._blocks.pop(key, None)
            raise

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of a query, retried until ClickHouse answers.

        A parameter whose value is a :class:`Table` is sent as an external table of that name
        (data, not query text); the others are bound as clickhouse-connect binds them.
        """
        tables = {name: value for name, value in parameters.items() if isinstance(value, Table)}
        external: ExternalData | None = None
        if tables:
            parameters = {k: v for k, v in parameters.items() if k not in tables}
            external = ExternalData()
            for name, table in tables.items():
                external.add_file(
                    file_name=name, data=table.data, fmt=table.fmt, structure=table.structure
                )
        result = await self._retry(
            "query",
            lambda: self._client.query(
                sql, parameters=parameters, settings=settings, external_data=external
            ),
        )
        return result.result_rows

    async def command(self, sql: str, parameters: dict[str, Any]) -> None:
        """Run a statement (a delete), retried until ClickHouse answers."""
        await self._retry("command", lambda: self._client.command(sql, parameters=parameters))

    async def _retry(
        self, what: str, call: Callable[[], Awaitable[T]], refusable: bool = False
    ) -> T:
        backoff = self._first_backoff
        while True:
            try:
                result = await call()
            except Exception as error:
                if refusable:
                    self._progress.insert_failed(failure_label(error))
                if refusable and refused_for_its_data(error):
                    log.warning("%s refused: %r", what, error)
                    reason = f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]
                    raise Refused(reason, getattr(error, "code", None)) from error
                log.warning("%s failed (%r); retrying in %.1fs", what, error, backoff)
                self._progress.wait(Hold.UNREACHABLE, f"{type(error).__name__}: {error}"[:200])
                await self.pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            else:
                self._progress.reached()  # ClickHouse answers: no longer unreachable
                return result

    async def close(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()
