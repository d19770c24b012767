"""The async engine and session factory, from the one database URL setting."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession


def create_engine(database_url: str) -> AsyncEngine:
    """An engine for SQLite (embedded default) or PostgreSQL (production).

    For SQLite, foreign keys are turned on and WAL lets readers in other processes go
    on while one process writes.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


_SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}


def sync_url(database_url: str) -> str:
    """The same database with a synchronous driver, for one-off blocking tasks."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    driver = _SYNC_DRIVERS.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database backend {backend!r}")
    return url.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def ensure_sqlite_folder(database_url: str) -> None:
    """Create the folder of a SQLite database file (blocking: call it outside a loop)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
