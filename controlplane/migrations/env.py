"""Alembic environment: runs migrations synchronously on the store's URL.

Migrations are a one-off, blocking task, so they use a synchronous driver (sqlite3 or
psycopg) in a thread of their own rather than an event loop.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from controlplane.store.engine import sync_url
from controlplane.store.models import Base

target_metadata = Base.metadata


def main() -> None:
    """Entry point alembic calls; offline (SQL script) mode is not supported."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


main()
