"""Retention of raw events: the ``clickhouse_raw_ttl_days`` setting, applied by migrate.

Migrations are static files, and a retention period is configuration, so ``promptline
migrate`` sets each raw table's TTL after applying them: ``MODIFY TTL`` when the period
differs from the table's, ``REMOVE TTL`` for 0 (keep forever). Aggregates have no TTL:
they are small, and they are what the compare endpoint reads.
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.asyncclient import AsyncClient

log = logging.getLogger(__name__)

RAW_TABLES = ("analytics_events", "signal_events", "usage_links")


def ttl_clause(days: int) -> str:
    """The TTL of a raw table kept ``days`` days, as ClickHouse prints it back."""
    return f"TTL toDateTime(received_at) + toIntervalDay({days})"


async def apply_retention(client: AsyncClient, database: str, days: int) -> list[str]:
    """Bring every raw table's TTL to ``days`` (0: none); returns the tables changed."""
    result = await client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    )
    engines = {str(name): str(engine) for name, engine in result.result_rows}
    changed: list[str] = []
    for table in RAW_TABLES:
        engine = engines.get(table)
        if engine is None:
            continue
        has_ttl = " TTL " in f" {engine} "
        if days == 0 and has_ttl:
            await client.command(f"ALTER TABLE `{database}`.{table} REMOVE TTL")
        elif days > 0 and ttl_clause(days) not in engine:
            await client.command(
                f"ALTER TABLE `{database}`.{table}"
                f" MODIFY TTL toDateTime(received_at) + INTERVAL {int(days)} DAY"
            )
        else:
            continue
        log.info("ClickHouse: %s keeps raw events %s", table, f"{days} days" if days else "forever")
        changed.append(table)
    return changed
