"""Retention: the ``clickhouse_raw_ttl_days`` and ``exposure_retention_days`` settings,
applied by migrate.

Migrations are static files, and a retention period is configuration, so ``promptline
migrate`` sets each table's TTL after applying them: ``MODIFY TTL`` when the period
differs from the table's, ``REMOVE TTL`` for 0 (keep forever). The raw event tables follow
``clickhouse_raw_ttl_days``; their aggregates have no TTL: they are small, hold no one's
data, and are what the compare endpoint reads. Exposures follow ``exposure_retention_days``,
the hourly table too, since its distinct-unit states hold hashes of the unit ids: after
the period no trace of a unit is left (docs/topics.md, "exposure").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from clickhouse_connect.driver.asyncclient import AsyncClient

from promptline.settings import Settings

log = logging.getLogger(__name__)

RAW_TABLES = ("analytics_events", "signal_events", "usage_links")
EXPOSURE_TABLES = ("exposure_events", "exposures_hourly")
RECEIVED = "toDateTime(received_at)"
TTL_TIME = {"exposures_hourly": "hour"}
"""The time a table's TTL counts from, where it is not the receive time."""


def ttl_clause(days: int, time: str = RECEIVED) -> str:
    """The TTL of a table kept ``days`` days, as ClickHouse prints it back."""
    return f"TTL {time} + toIntervalDay({days})"


def retention_days(settings: Settings) -> dict[str, int]:
    """Days each table is kept (0: forever)."""
    periods = dict.fromkeys(RAW_TABLES, settings.clickhouse_raw_ttl_days)
    periods.update(dict.fromkeys(EXPOSURE_TABLES, settings.exposure_retention_days))
    return periods


async def apply_retention(
    client: AsyncClient, database: str, periods: Mapping[str, int]
) -> list[str]:
    """Bring each table's TTL to its period in days (0: none); returns the tables changed."""
    result = await client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    )
    engines = {str(name): str(engine) for name, engine in result.result_rows}
    changed: list[str] = []
    for table, days in periods.items():
        engine = engines.get(table)
        if engine is None:
            continue
        time = TTL_TIME.get(table, RECEIVED)
        has_ttl = " TTL " in f" {engine} "
        if days == 0 and has_ttl:
            await client.command(f"ALTER TABLE `{database}`.{table} REMOVE TTL")
        elif days > 0 and ttl_clause(days, time) not in engine:
            await client.command(
                f"ALTER TABLE `{database}`.{table} MODIFY TTL {time} + INTERVAL {int(days)} DAY"
            )
        else:
            continue
        log.info("ClickHouse: %s keeps its rows %s", table, f"{days} days" if days else "forever")
        changed.append(table)
    return changed
