"""The ClickHouse schema: migrations, retention, comments, and the deduplication it relies on."""

from __future__ import annotations

import asyncio

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from promptline.clickhouse import connect
from promptline.settings import Settings
from sql.retention import RAW_TABLES, ttl_clause
from sql.runner import load_migrations, migrate
from tests.workers.helpers import command, query, table_engines
from workers.sink import insert_settings

pytestmark = [pytest.mark.clickhouse]


async def test_migrations_apply_once_from_an_empty_database(settings: Settings) -> None:
    shipped = await asyncio.to_thread(load_migrations)
    applied = await migrate(settings)
    assert [m.version for m in applied] == [m.version for m in shipped]
    recorded = await query(
        settings, "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    )
    assert recorded == [(m.version, m.name, m.checksum) for m in shipped]
    assert await migrate(settings) == []
    assert len(await query(settings, "SELECT version FROM schema_migrations")) == len(shipped)
    tables = await table_engines(settings)
    for name in (*RAW_TABLES, "analytics_hourly", "signals_hourly", "usage_hourly"):
        assert name in tables
        assert " TTL " not in tables[name]


async def test_every_table_and_column_is_commented_for_analysts(settings: Settings) -> None:
    await migrate(settings)
    database = settings.clickhouse_database
    tables = await query(
        settings,
        "SELECT name, comment FROM system.tables WHERE database = {db:String}",
        db=database,
    )
    assert tables and all(comment for _name, comment in tables)
    columns = await query(
        settings,
        "SELECT table, name FROM system.columns WHERE database = {db:String}"
        " AND comment = ''"
        " AND table NOT IN (SELECT name FROM system.tables WHERE database = {db:String}"
        " AND engine = 'MaterializedView')",
        db=database,
    )
    assert columns == []


async def test_retention_setting_sets_and_removes_the_raw_tables_ttl(settings: Settings) -> None:
    await migrate(settings.model_copy(update={"clickhouse_raw_ttl_days": 30}))
    engines = await table_engines(settings)
    assert all(ttl_clause(30) in engines[table] for table in RAW_TABLES)
    assert " TTL " not in engines["analytics_hourly"]
    await migrate(settings.model_copy(update={"clickhouse_raw_ttl_days": 90}))
    engines = await table_engines(settings)
    assert all(ttl_clause(90) in engines[table] for table in RAW_TABLES)
    await migrate(settings)
    engines = await table_engines(settings)
    assert all(" TTL " not in engines[table] for table in RAW_TABLES)


INSERT_TEN = (
    "INSERT INTO analytics_events (event_id, received_at, org_id, project_id, prompt_id,"
    " version_hash, latency_ms, dedup_key, kafka_partition, kafka_offset)"
    " SELECT generateUUIDv7(), now64(3), generateUUIDv4(), generateUUIDv4(), generateUUIDv4(),"
    " 'sha256:x', number, toString(number), 0, number FROM numbers(1, 10)"
)


async def _counts(settings: Settings) -> tuple[object, ...]:
    raw = await query(settings, "SELECT count(), sum(latency_ms) FROM analytics_events")
    hourly = await query(settings, "SELECT sum(events), sum(latency_sum) FROM analytics_hourly")
    return raw[0] + hourly[0]


async def test_same_token_again_adds_nothing_and_completes_a_view_that_failed(
    settings: Settings,
) -> None:
    """What the workers build on: an insert is idempotent per token, views included."""
    await migrate(settings)
    await command(settings, "ALTER TABLE analytics_hourly ADD CONSTRAINT down CHECK events = 0")
    client = await connect(settings)
    try:
        with pytest.raises(DatabaseError, match="down"):
            await client.command(INSERT_TEN, settings=insert_settings("block-1"))
        assert await _counts(settings) == (10, 55.0, 0, 0.0)
        await client.command("ALTER TABLE analytics_hourly DROP CONSTRAINT down")
        for _attempt in range(2):
            await client.command(INSERT_TEN, settings=insert_settings("block-1"))
            assert await _counts(settings) == (10, 55.0, 10, 55.0)
        await client.command(INSERT_TEN, settings=insert_settings("block-2"))
        assert await _counts(settings) == (20, 110.0, 20, 110.0)
    finally:
        await client.close()
