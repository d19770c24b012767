"""The Alembic migrations build exactly the schema the models describe, on both stores.

A model changed without a migration would pass every test on a fresh SQLite file made
from the models, and break the first production upgrade; so compare the two directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from controlplane.store.engine import sync_url
from controlplane.store.models import Base


def _differences(url: str) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


async def test_migrated_schema_equals_the_models(fresh_store_url: str) -> None:
    differences = await asyncio.to_thread(_differences, fresh_store_url)
    assert differences == [], f"models and migrations differ: {differences}"
