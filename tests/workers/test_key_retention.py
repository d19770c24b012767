"""The key table is kept as long as the duplicate lookup's window needs (a week more, at
least 31 days, forever with an unbounded window); a longer period is trusted only once the
keys of the days it gains are filled, a shorter one before the TTL may drop keys; and a
worker trusts what the table states, not its own settings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from promptline.clickhouse import connect
from promptline.settings import Settings
from sql import key_retention, runner
from sql.key_retention import (
    FLOOR_DAYS,
    SETTLE_SECONDS,
    SLACK_DAYS,
    coverage_comment,
    key_days,
    trusted_days,
)
from sql.retention import ttl_clause
from tests.workers.helpers import Tenant, analytics, command, millis, query
from tests.workers.test_refusal_splitting import HASH
from workers.dedup import DuplicateFinder
from workers.key_retention import NOTHING_KEPT, REREAD_SECONDS, KeyRetention
from workers.sink import ClickHouseSink
from workers.tables import ANALYTICS, Lineage

ENGINE = "MergeTree PARTITION BY toDate(received_at) ORDER BY (source_table, project_id)"
LEGACY = "Identities of the events the raw tables hold, received in the last 31 days"


def test_the_period_is_the_window_and_a_week_at_least_31_days_or_forever() -> None:
    assert key_days(7) == FLOOR_DAYS
    assert key_days(40) == 40 + SLACK_DAYS
    assert key_days(0) is None


def test_the_trusted_period_is_the_shorter_of_the_ttl_and_the_stated_one() -> None:
    assert trusted_days(f"{ENGINE} {ttl_clause(31)}", LEGACY) == 31
    assert trusted_days(f"{ENGINE} {ttl_clause(47)}", coverage_comment(31)) == 31
    assert trusted_days(f"{ENGINE} {ttl_clause(31)}", coverage_comment(47)) == 31
    assert trusted_days(ENGINE, coverage_comment(None)) is None
    assert trusted_days(ENGINE, coverage_comment(31)) == 31
    assert trusted_days(f"{ENGINE} TTL toDateTime(received_at) + toIntervalHour(5)", "") == 0


def test_a_worker_reads_again_well_before_migrate_stops_waiting() -> None:
    assert REREAD_SECONDS < SETTLE_SECONDS


class Answers:
    """Stands in for the sink's queries: answers with the clauses it holds."""

    def __init__(self, engine: str | None, comment: str = "") -> None:
        self.engine, self.comment = engine, comment
        self.asked = 0

    async def __call__(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        self.asked += 1
        return [] if self.engine is None else [[self.engine, self.comment]]


async def test_a_worker_reads_the_period_again_after_a_while() -> None:
    answers, now = Answers(f"{ENGINE} {ttl_clause(47)}", coverage_comment(47)), [0.0]
    retention = KeyRetention(answers, clock=lambda: now[0])
    assert await retention.kept() == timedelta(days=47)
    answers.comment = coverage_comment(31)  # a migrate is shortening it
    now[0] = REREAD_SECONDS - 1
    assert await retention.kept() == timedelta(days=47) and answers.asked == 1
    now[0] = REREAD_SECONDS
    assert await retention.kept() == timedelta(days=31) and answers.asked == 2


async def test_no_key_table_counts_as_nothing_kept() -> None:
    assert await KeyRetention(Answers(None)).kept() == NOTHING_KEPT


class Recorded(ClickHouseSink):
    """A sink that keeps the text of every query it runs."""

    queries: list[str]

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        self.queries.append(sql)
        return await super().rows(sql, parameters, settings)


async def _period(client: Any) -> timedelta | None:
    return await KeyRetention(ClickHouseSink(client).rows).kept()


async def _stored_long_ago(settings: Settings, client: Any) -> list[Any]:
    """An event stored 40 days ago whose key the 31 days' TTL would have dropped by now;
    returns its copy received now."""
    tenant, prompt = Tenant(), uuid.uuid4()
    old = analytics(tenant, prompt, HASH, key="forty-days-ago", at=millis() - timedelta(days=40))
    row = ANALYTICS.to_row(old, Lineage(0, 0))
    await client.insert(ANALYTICS.table, [row], column_names=list(ANALYTICS.columns))
    await command(settings, "DELETE FROM dedup_keys WHERE dedup_key = 'forty-days-ago'")
    return ANALYTICS.to_row(analytics(tenant, prompt, HASH, key="forty-days-ago"), Lineage(0, 1))


@pytest.mark.clickhouse
async def test_migrate_changes_the_period_so_no_worker_trusts_a_missing_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await runner.migrate(settings)
    monkeypatch.setattr(key_retention, "SETTLE_SECONDS", 0.0)
    client = await connect(settings)
    try:
        assert await _period(client) == timedelta(days=FLOOR_DAYS)
        copy = await _stored_long_ago(settings, client)
        keys = "SELECT count() FROM dedup_keys WHERE dedup_key = 'forty-days-ago'"
        assert await query(settings, keys) == [(0,)]

        await runner.migrate(settings.model_copy(update={"worker_dedup_window_days": 45}))
        assert await _period(client) == timedelta(days=45 + SLACK_DAYS)
        assert await query(settings, keys) == [(1,)]  # filled before it was trusted
        sink = Recorded(client)
        sink.queries = []
        finder = DuplicateFinder(sink, timedelta(days=45))  # a copy 40 days later
        assert await finder.stored_keys(ANALYTICS, [copy]) == {ANALYTICS.key(copy)}
        assert [sql for sql in sink.queries if "FROM dedup_keys" in sql]
        assert not [sql for sql in sink.queries if f"FROM {ANALYTICS.table}" in sql]

        await runner.migrate(settings.model_copy(update={"worker_dedup_window_days": 0}))
        assert await _period(client) is None
        await runner.migrate(settings.model_copy(update={"worker_dedup_window_days": 7}))
        assert await _period(client) == timedelta(days=FLOOR_DAYS)
        engine = await query(
            settings,
            "SELECT engine_full, comment FROM system.tables"
            " WHERE database = currentDatabase() AND name = 'dedup_keys'",
        )
        assert ttl_clause(FLOOR_DAYS) in engine[0][0]
        assert engine[0][1] == coverage_comment(FLOOR_DAYS)
    finally:
        await client.close()


@pytest.mark.clickhouse
async def test_a_worker_trusting_less_than_the_window_reads_the_raw_table(
    settings: Settings,
) -> None:
    await runner.migrate(settings)
    client = await connect(settings)
    try:
        copy = await _stored_long_ago(settings, client)
        sink = Recorded(client)
        sink.queries = []
        # A worker with a 45-day window against a table migrated for 7 days (31 kept).
        finder = DuplicateFinder(sink, timedelta(days=45))
        assert await finder.stored_keys(ANALYTICS, [copy]) == {ANALYTICS.key(copy)}
        assert [sql for sql in sink.queries if f"FROM {ANALYTICS.table}" in sql]
    finally:
        await client.close()
