"""The duplicate lookup's key table kept as long as the lookup's window needs, changed so that
no worker ever trusts a key the table does not hold.

Migration 0010 keeps ``dedup_keys`` 31 days. A lookup window longer than that (or an
unbounded one) would send every lookup to the raw tables, whose cost grows with what is
stored; so ``promptline migrate`` keeps the key table the window and ``SLACK_DAYS`` more
(at least 31 days, forever with an unbounded window). Workers trust the period the table's
comment states (``workers/key_retention.py``), which this module changes last when the
period grows (after the keys of the added days are filled from the raw tables) and first
when it shrinks (then waits until every worker has read it again before the TTL drops keys).
"""

from __future__ import annotations

import asyncio
import logging
import re

from clickhouse_connect.driver.asyncclient import AsyncClient

log = logging.getLogger(__name__)

KEY_TABLE = "dedup_keys"
FLOOR_DAYS = 31
"""Migration 0010's period: the key table is never kept shorter."""
SLACK_DAYS = 7
"""Days kept beyond the window: a worker up to that far behind the edge (an outage) still
finds its keys here rather than in the raw tables."""
SETTLE_SECONDS = 60.0
"""How long a worker may trust a period it read (``workers.key_retention.REREAD_SECONDS``)."""
FEEDING_TABLES = ("analytics_events", "signal_events", "usage_links", "exposure_events")
"""The raw tables whose views feed the key table (migration 0010)."""
_TTL_DAYS = re.compile(r"\bTTL toDateTime\(received_at\) \+ toIntervalDay\((\d+)\)")
_STATED = re.compile(r"complete for (?:the last (\d+) days|(every day)) of receive time")


def key_days(window_days: int) -> int | None:
    """Days the key table keeps for a lookup window of ``window_days`` (0: unbounded);
    None: forever."""
    return None if window_days == 0 else max(FLOOR_DAYS, window_days + SLACK_DAYS)


def coverage_comment(days: int | None) -> str:
    """The table's comment, which states the period workers may trust."""
    span = "every day" if days is None else f"the last {days} days"
    return (
        "Identities of the events the raw tables hold, complete for "
        f"{span} of receive time, ordered for the duplicate lookup"
    )


def ttl_days(engine_full: str) -> int | None:
    """The days a table's engine clause keeps rows by receive time (None: no TTL); 0 for a
    TTL of another form, which nothing here sets."""
    if " TTL " not in f" {engine_full} ":
        return None
    found = _TTL_DAYS.search(engine_full)
    return int(found.group(1)) if found else 0


def trusted_days(engine_full: str, comment: str) -> int | None:
    """The days back the key table holds every key (None: all): the shorter of its TTL and
    the period its comment states (a comment stating none, as migration 0010's, adds no
    bound)."""
    ttl = ttl_days(engine_full)
    stated = _STATED.search(comment)
    if stated is None or stated.group(2):
        return ttl
    days = int(stated.group(1))
    return days if ttl is None else min(ttl, days)


def _longer(days: int | None, than: int | None) -> bool:
    return than is not None and (days is None or days > than)


async def apply_key_retention(client: AsyncClient, database: str, window_days: int) -> bool:
    """Bring the key table's period to the window's; returns whether it changed."""
    result = await client.query(
        "SELECT engine_full, comment FROM system.tables"
        " WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": database, "name": KEY_TABLE},
    )
    if not result.result_rows:
        return False
    engine, comment = (str(value) for value in result.result_rows[0])
    ttl, trusted, target = ttl_days(engine), trusted_days(engine, comment), key_days(window_days)
    table = f"`{database}`.{KEY_TABLE}"
    if _longer(target, trusted):
        # Keep the keys first, fill the days gained, and only then let workers trust them.
        if ttl != target:
            await _set_ttl(client, table, target)
        await _fill(client, table, database, since_days=target, before_days=trusted)
        await _say(client, table, target)
    elif ttl != target or comment != coverage_comment(target):
        # Workers stop trusting the days lost before the TTL may drop them.
        await _say(client, table, target)
        if _longer(ttl, target):
            log.info("ClickHouse: waiting %.0f s for workers to read the period", SETTLE_SECONDS)
            await asyncio.sleep(SETTLE_SECONDS)
        if ttl != target:
            await _set_ttl(client, table, target)
    else:
        return False
    log.info(
        "ClickHouse: %s keeps its keys %s", KEY_TABLE, f"{target} days" if target else "forever"
    )
    return True


async def _set_ttl(client: AsyncClient, table: str, days: int | None) -> None:
    if days is None:
        await client.command(f"ALTER TABLE {table} REMOVE TTL")
    else:
        await client.command(
            f"ALTER TABLE {table} MODIFY TTL toDateTime(received_at) + INTERVAL {int(days)} DAY"
        )


async def _fill(
    client: AsyncClient, table: str, database: str, since_days: int | None, before_days: int | None
) -> None:
    """The keys of the raw tables' rows received in the days the period gains (a key twice
    is harmless: the lookup reads a set)."""
    bounds = []
    if before_days is not None:
        bounds.append(f"received_at < now() - INTERVAL {max(int(before_days) - 1, 0)} DAY")
    if since_days is not None:
        bounds.append(f"received_at >= now() - INTERVAL {int(since_days) + 1} DAY")
    where = " AND ".join(bounds) or "1"
    for source in FEEDING_TABLES:
        await client.command(
            f"INSERT INTO {table} SELECT '{source}', project_id, prompt_id, dedup_key,"
            " received_at, kafka_partition, kafka_offset, kafka_block_first,"
            f" kafka_block_marker, kafka_piece FROM `{database}`.{source} WHERE {where}"
        )


async def _say(client: AsyncClient, table: str, days: int | None) -> None:
    comment = coverage_comment(days).replace("'", "''")
    await client.command(f"ALTER TABLE {table} MODIFY COMMENT '{comment}'")
