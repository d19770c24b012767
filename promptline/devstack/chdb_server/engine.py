"""The one chDB session over a data directory, driven from asyncio without blocking it.

chDB calls block, and a data directory admits one open session (chDB locks it), so
every call runs on one dedicated worker thread, in arrival order; an asyncio.Lock
keeps waiting requests on the loop, where a cancelled one costs nothing, and the
single thread keeps chDB calls strictly one at a time even if a waiter is cancelled.

The HTTP interface gives each query its own context (default database, settings);
the session has one. So before each statement the engine issues ``USE`` and ``SET``
for what the request asks, and resets what an earlier request set and this one does
not (to chDB's startup value, else ``DEFAULT``). It remembers what it applied, so an
unchanged context costs no extra call. Settings that reach ``SET`` include
``insert_deduplication_token``, ``async_insert``, ``max_execution_time`` and the like.

An ``INSERT ... FORMAT X`` with data runs as ``INSERT ... FROM INFILE`` on a spool file
the engine writes the data to (in RAM under /dev/shm where there is one), because that is
chDB's ordinary query path, where an insert the engine refuses raises as any failed query
does. chDB's two ways of passing data directly will not do (chdb-core 26.9): its streaming
inserter (``send_insert``) loses the engine's exception once the data is in (a CHECK
constraint, a materialized view or DEFAULT that throws) and reports the insert as written,
with nothing stored; and data inline in the query text ends at its first blank line, which
binary data such as Native holds anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from promptline.devstack.chdb_server.errors import UNKNOWN_SETTING, ClickHouseError

_T = TypeVar("_T")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORGETS_SETTINGS = frozenset({"SET"})
_FORGETS_DATABASE = frozenset({"USE", "DROP", "DETACH", "RENAME", "EXCHANGE"})


class _Result(Protocol):
    """What ``Session.query`` returns (chDB's ``query_result``)."""

    def bytes(self) -> bytes | None: ...
    def rows_read(self) -> int: ...
    def bytes_read(self) -> int: ...
    def storage_rows_read(self) -> int: ...
    def storage_bytes_read(self) -> int: ...
    def rows_written(self) -> int: ...
    def bytes_written(self) -> int: ...
    def elapsed(self) -> float: ...


class _Session(Protocol):
    def query(
        self, sql: str, fmt: str = ..., *, params: dict[str, str] | None = ...
    ) -> _Result: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ExternalTable:
    """Data sent with a query (multipart "external data"), read as a temporary table ``name``.

    The real server makes each such file a temporary table for the query's duration; so does
    the engine, with ``CREATE TEMPORARY TABLE`` and ``INSERT ... FROM INFILE``, dropped after.
    """

    name: str
    structure: str
    fmt: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement and its context, as the HTTP layer parsed it.

    ``insert_format`` set means ``sql`` is an INSERT without its SETTINGS and FORMAT
    clauses, ``insert_settings`` its own ``SETTINGS ...`` clause (or "") and
    ``insert_data`` its data in that format. ``keyword`` is the statement's first word,
    upper-cased.
    """

    sql: str
    database: str = "default"
    settings: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    output_format: str = "TabSeparated"
    result_format: str | None = None
    insert_format: str | None = None
    insert_data: bytes = b""
    insert_settings: str = ""
    keyword: str = ""
    external: tuple[ExternalTable, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result bytes and the counters of X-ClickHouse-Summary."""

    body: bytes = b""
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0


def quote_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """A back-quoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _chdb_call(call: Callable[[], _T]) -> _T:
    """Run a chDB call, turning its RuntimeError (ChdbError) into a ClickHouseError."""
    try:
        return call()
    except RuntimeError as exc:
        raise ClickHouseError.from_chdb(str(exc)) from None


def _outcome(result: _Result) -> Outcome:
    return Outcome(
        body=result.bytes() or b"",
        read_rows=result.storage_rows_read(),
        read_bytes=result.storage_bytes_read(),
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        result_rows=result.rows_read(),
        result_bytes=result.bytes_read(),
        elapsed_ns=int(result.elapsed() * 1e9),
    )


def _rows(session: _Session, sql: str) -> list[list[Any]]:
    result = _chdb_call(lambda: session.query(sql, "JSONCompact"))
    data: list[list[Any]] = json.loads(result.bytes() or b"{}")["data"]
    return data


class _SessionState:
    """The chDB session plus what the engine has applied to it; used on the worker only.

    ``spool`` is a directory of this session's own, for the data of the insert running.
    """

    def __init__(self, session: _Session, baseline: dict[str, str], spool: Path) -> None:
        self.session = session
        self._baseline = baseline
        self._spool = spool
        self._database: str | None = None
        self._applied: dict[str, str] | None = {}
        self._touched: set[str] = set()

    def execute(self, statement: Statement) -> Outcome:
        try:
            self._use(statement.database)
            self._set(statement.settings)
            if statement.insert_format is not None:
                return self._insert(statement, statement.insert_format)
            if statement.external:
                return self._query_with(statement)
            return self._query(statement)
        finally:
            # A client's own SET, or a statement that may move or drop the current database,
            # leaves the session in a state the engine no longer knows: re-apply next time.
            if statement.keyword in _FORGETS_SETTINGS:
                self._applied = None
            if statement.keyword in _FORGETS_DATABASE:
                self._database = None

    def _use(self, database: str) -> None:
        if database != self._database:
            _chdb_call(lambda: self.session.query(f"USE {quote_identifier(database)}"))
            self._database = database

    def _set(self, desired: Mapping[str, str]) -> None:
        for name in desired:
            if not _SETTING_NAME.fullmatch(name):
                raise ClickHouseError.of(UNKNOWN_SETTING, f"Unknown setting '{name}'")
        if self._applied is None:
            changes = dict(desired)
            stale = self._touched - desired.keys()
        else:
            changes = {k: v for k, v in desired.items() if self._applied.get(k) != v}
            stale = self._applied.keys() - desired.keys()
        if not changes and not stale:
            return
        assignments = [f"{name} = {quote_string(value)}" for name, value in changes.items()]
        for name in sorted(stale):
            reset = self._baseline.get(name)
            assignments.append(f"{name} = {'DEFAULT' if reset is None else quote_string(reset)}")
        self._applied = None  # unknown until the SET succeeds
        _chdb_call(lambda: self.session.query("SET " + ", ".join(assignments)))
        self._touched |= desired.keys()
        self._applied = dict(desired)

    def _query(self, statement: Statement, sql: str | None = None) -> Outcome:
        text = statement.sql if sql is None else sql
        params = dict(statement.params)
        return _outcome(
            _chdb_call(lambda: self.session.query(text, statement.output_format, params=params))
        )

    def _insert(self, statement: Statement, fmt: str) -> Outcome:
        """The data through a spool file, removed again at once (it may be in RAM)."""
        path = self._spool / "insert"  # one statement at a time, so one name will do
        path.write_bytes(statement.insert_data)
        try:
            clauses = [
                statement.sql,
                f"FROM INFILE {quote_string(str(path))} COMPRESSION 'none'",
                statement.insert_settings,
                f"FORMAT {fmt}",
            ]
            return self._query(statement, " ".join(clause for clause in clauses if clause))
        finally:
            path.unlink(missing_ok=True)

    def _query_with(self, statement: Statement) -> Outcome:
        """The query with its external tables, each loaded from a spool file, then dropped."""
        created: list[str] = []
        try:
            for table in statement.external:
                name = quote_identifier(table.name)
                self._run(f"CREATE TEMPORARY TABLE {name} ({table.structure}) ENGINE = Memory")
                created.append(name)
                path = self._spool / "external"
                path.write_bytes(table.data)
                try:
                    infile = f"FROM INFILE {quote_string(str(path))} COMPRESSION 'none'"
                    self._run(f"INSERT INTO {name} {infile} FORMAT {table.fmt}")
                finally:
                    path.unlink(missing_ok=True)
            return self._query(statement)
        finally:
            for name in created:
                self._run(f"DROP TEMPORARY TABLE IF EXISTS {name}")

    def _run(self, sql: str) -> None:
        _chdb_call(lambda: self.session.query(sql))

    def close(self) -> None:
        """Close the session, flushing it to the data directory, and remove the spool."""
        try:
            self.session.close()
        finally:
            shutil.rmtree(self._spool, ignore_errors=True)


def _make_spool() -> Path:
    """A private directory for insert data: in RAM under /dev/shm where there is one."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    spool = Path(tempfile.mkdtemp(prefix="promptline-chdb-", dir=parent)).resolve()
    if any(char in str(spool) for char in "*?{}[]"):  # FROM INFILE would expand them
        shutil.rmtree(spool, ignore_errors=True)
        raise ValueError(
            f"the temporary directory's path must not contain glob characters: {spool}"
        )
    return spool


def _open_session(data_dir: Path, timezone: str) -> tuple[_SessionState, str, str]:
    """Open the session, pin its timezone, and note chDB's startup settings (worker thread)."""
    path = data_dir.resolve()
    if "?" in str(path):  # chDB would read the rest as connection-string arguments
        raise ValueError(f"data directory path must not contain '?': {path}")
    path.mkdir(parents=True, exist_ok=True)
    spool = _make_spool()
    try:
        module: Any = importlib.import_module("chdb.session")  # untyped: kept behind _Session
        session: _Session = module.Session(str(path))
        try:
            _chdb_call(lambda: session.query(f"SET session_timezone = {quote_string(timezone)}"))
            changed = _rows(session, "SELECT name, value FROM system.settings WHERE changed")
            baseline = {str(name): str(value) for name, value in changed}
            version, server_timezone = _rows(session, "SELECT version(), timezone()")[0]
        except BaseException:
            session.close()
            raise
    except BaseException:
        shutil.rmtree(spool, ignore_errors=True)
        raise
    return _SessionState(session, baseline, spool), str(version), str(server_timezone)


class ChdbEngine:
    """Runs statements on the one chDB session, one at a time, off the event loop."""

    def __init__(
        self, state: _SessionState, executor: ThreadPoolExecutor, version: str, timezone: str
    ) -> None:
        self._state = state
        self._executor = executor
        self._lock = asyncio.Lock()
        self._closed = False
        self.version = version
        self.timezone = timezone

    @classmethod
    async def open(cls, data_dir: Path, timezone: str = "UTC") -> ChdbEngine:
        """Open (creating if needed) the data directory; fails if another process has it."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        loop = asyncio.get_running_loop()
        try:
            state, version, server_timezone = await loop.run_in_executor(
                executor, _open_session, data_dir, timezone
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(state, executor, version, server_timezone)

    async def execute(self, statement: Statement) -> Outcome:
        """Run one statement in its context; raises ClickHouseError on failure."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("the chDB engine is closed")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._state.execute, statement)

    async def close(self) -> None:
        """Close the session (flushing it to the data directory) and stop the worker."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._state.close)
            finally:
                self._executor.shutdown(wait=False)
