"""A block ClickHouse refuses never holds its partition still: the records at fault are found
by splitting and dead-lettered, the rest stored once in the table and the aggregates; a block
refused whole is the warehouse's fault, retried, never dead-lettered."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import AnalyticsRecord
from tests.workers.helpers import (
    SimulatedCrash,
    Tenant,
    analytics,
    cli,
    command,
    committed_offsets,
    in_process_worker,
    produce,
    query,
    wait_until,
)
from workers.progress import Hold
from workers.sink import ClickHouseSink

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH = "sha256:" + "d" * 64
POISON = 4242.5
"""The latency the poisoned view refuses."""

HOURLY_QUERY = """
SELECT
    project_id, prompt_id, version_hash, toStartOfHour(received_at) AS hour,
    count() AS events,
    count(latency_ms) AS latency_count,
    sum(ifNull(latency_ms, 0)) AS latency_sum,
    sum(ifNull(latency_ms, 0) * ifNull(latency_ms, 0)) AS latency_sum_sq,
    quantilesDDState(0.01, 0.5, 0.95, 0.99)(latency_ms) AS latency_quantiles,
    count(cost_usd) AS cost_count,
    sum(ifNull(cost_usd, 0)) AS cost_sum,
    sum(ifNull(cost_usd, 0) * ifNull(cost_usd, 0)) AS cost_sum_sq,
    count(score) AS score_count,
    sum(ifNull(score, 0)) AS score_sum,
    sum(ifNull(score, 0) * ifNull(score, 0)) AS score_sum_sq
FROM {source}
WHERE {condition}
GROUP BY project_id, prompt_id, version_hash, hour
SETTINGS allow_custom_error_code_in_throwif = 1
"""
"""The query of ``analytics_hourly_mv`` (migration 0005), with a condition to break it by."""


async def _view(settings: Settings, condition: str) -> None:
    """Make the hourly view refuse the rows ``condition`` throws for (custom code 4242, a code
    no list of the worker's holds), or restore it with ``1``."""
    source = f"{settings.clickhouse_database}.analytics_events"
    query_text = HOURLY_QUERY.format(source=source, condition=condition)
    await command(settings, f"ALTER TABLE analytics_hourly_mv MODIFY QUERY {query_text}")


def _poisoned(column: str) -> str:
    return f"throwIf({column} = {POISON}, 'poisoned row', toInt16(4242)) = 0"


def _events(count: int, poison_at: int | None = None) -> list[AnalyticsRecord]:
    tenant, prompt = Tenant(), uuid.uuid4()
    return [
        analytics(tenant, prompt, HASH, latency=POISON if n == poison_at else float(n), cost=1.0)
        for n in range(1, count + 1)
    ]


async def _committed(settings: Settings) -> int:
    topic = topic_name(settings.kafka_topic_prefix, EventKind.ANALYTICS)
    return (await committed_offsets(settings, [EventKind.ANALYTICS])).get(topic, 0)


async def _stored(settings: Settings) -> tuple[Any, ...]:
    """Raw rows, distinct identities, latency sum; the hourly aggregates' events and sum."""
    raw = await query(
        settings,
        "SELECT count(), uniqExact(project_id, prompt_id, dedup_key), sum(latency_ms)"
        " FROM analytics_events",
    )
    hourly = await query(settings, "SELECT sum(events), sum(latency_sum) FROM analytics_hourly")
    return raw[0] + hourly[0]


async def _dead_letters(settings: Settings) -> list[dict[str, Any]]:
    out = await cli(settings, "dead-letters", "list", "--json")
    return [json.loads(line) for line in out.splitlines()]


async def test_one_refused_record_of_ten_thousand_is_dead_lettered_and_the_rest_stored_once(
    migrated: Settings,
) -> None:
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 10_000, "worker_batch_max_seconds": 30.0}
    )
    await _view(settings, _poisoned("latency_ms"))
    events = _events(10_000, poison_at=5_000)
    await produce(settings, events)
    good_sum = sum(float(n) for n in range(1, 10_001) if n != 5_000)
    async with in_process_worker(settings) as (worker, _task, _stop):
        await wait_until(lambda: _committed(settings), "the block committed", within=240)
        assert await _committed(settings) == 10_000
        assert (worker.stats.rows_written, worker.stats.dead_lettered) == (9_999, 1)
        assert await _stored(settings) == (9_999, 9_999, good_sum, 9_999, good_sum)
        [letter] = await _dead_letters(settings)
        assert letter["source_offset"] == 4_999
        assert "refused by ClickHouse" in letter["reason"] and "poisoned row" in letter["reason"]
        assert "4242" in letter["reason"]
    async with in_process_worker(migrated) as (worker, _task, _stop):
        # The partition moves on.
        later = analytics(Tenant(), uuid.uuid4(), HASH, latency=1.0)
        await produce(migrated, [later])
        await wait_until(lambda: worker.stats.rows_written == 1, "the next event stored")
        assert await _stored(migrated) == (10_000, 10_000, good_sum + 1, 10_000, good_sum + 1)
        # Once the view is fixed, the replayed dead letter lands everywhere, once.
        await _view(migrated, "1")
        await cli(migrated, "dead-letters", "replay")
        await wait_until(lambda: worker.stats.rows_written == 2, "the replayed event stored")
    total = good_sum + 1 + POISON
    assert await _stored(settings) == (10_001, 10_001, total, 10_001, total)


async def test_a_block_refused_whole_is_retried_never_dead_lettered(migrated: Settings) -> None:
    """Every record fails, each alone too (a broken view): the warehouse is at fault."""
    await _view(migrated, "throwIf(latency_ms >= 0, 'broken view', toInt16(4243)) = 0")
    await produce(migrated, _events(50))
    async with in_process_worker(migrated) as (worker, _task, _stop):
        await wait_until(
            lambda: (
                worker.progress.waiting is not None and worker.progress.waiting.hold is Hold.STUCK
            ),
            "the worker reports itself stuck",
        )
        assert worker.progress.waiting is not None
        assert "broken view" in worker.progress.waiting.reason
        assert (worker.stats.rows_written, worker.stats.dead_lettered) == (0, 0)
        assert await _committed(migrated) == 0
        hourly = await query(migrated, "SELECT count() FROM analytics_hourly")
        assert hourly == [(0,)]  # each try's raw rows are undone; the view never counted any
        await _view(migrated, "1")
        await wait_until(lambda: worker.stats.rows_written == 50, "stored once the view is fixed")
        await wait_until(lambda: _committed(migrated), "committed")
        assert worker.progress.waiting is None
    assert await _dead_letters(migrated) == []
    assert await _stored(migrated) == (50, 50, 1275.0, 50, 1275.0)


class _DiesAfterAPieceStored(ClickHouseSink):
    """Dies right after it stores a piece of a block that was refused and split."""

    refusals = 0

    async def write(self, table: str, columns: Any, rows: list[list[Any]], token: str) -> None:
        try:
            await super().write(table, columns, rows, token)
        except Exception:
            self.refusals += 1
            raise
        if self.refusals:
            raise SimulatedCrash


async def test_a_block_split_by_a_worker_that_died_is_finished_by_the_next_owner(
    migrated: Settings,
) -> None:
    await _view(migrated, _poisoned("latency_ms"))
    events = _events(200, poison_at=150)
    good_sum = sum(float(n) for n in range(1, 201) if n != 150)
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 200, "worker_batch_max_seconds": 30.0}
    )
    await produce(settings, events)
    async with in_process_worker(settings, sink_type=_DiesAfterAPieceStored) as (w, task, _s):
        with pytest.raises(SimulatedCrash):
            await task
        assert w.stats.rows_written == 0  # died before counting what it stored
    stored_before = (await _stored(settings))[0]
    assert 0 < stored_before < 199  # a piece is stored, the rest is not
    async with in_process_worker(settings) as (worker, _task, _stop):
        await wait_until(lambda: worker.stats.blocks_recovered == 1, "the recovery")
        await wait_until(lambda: _committed(settings), "committed past the block")
        assert worker.stats.rows_written == 0  # recovery's own rows are not counted there
    assert await _stored(settings) == (199, 199, good_sum, 199, good_sum)
    letters = await _dead_letters(settings)
    assert [letter["source_offset"] for letter in letters] == [149]


async def test_an_analysts_view_that_refuses_a_record_never_splits_raw_from_aggregates(
    migrated: Settings,
) -> None:
    """A view added beside ours refuses one record: ClickHouse may have run ours first (the
    rows stay, stored everywhere of ours) or not (the record is dead-lettered, the rest
    stored): either way the raw table and the aggregates agree, and the partition goes on."""
    await command(
        migrated,
        "CREATE TABLE analyst_target (latency Float64) ENGINE = MergeTree ORDER BY tuple()",
    )
    await command(
        migrated,
        "CREATE MATERIALIZED VIEW analyst_mv TO analyst_target AS SELECT"
        f" ifNull(latency_ms, 0) + throwIf(latency_ms = {POISON}, 'analyst says no',"
        " toInt16(4244)) AS latency FROM analytics_events"
        " SETTINGS allow_custom_error_code_in_throwif = 1",
    )
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 2_000, "worker_batch_max_seconds": 30.0}
    )
    await produce(settings, _events(2_000, poison_at=1_000))
    async with in_process_worker(settings) as (worker, _task, _stop):
        await wait_until(lambda: _committed(settings), "the block committed", within=240)
        written, dead = worker.stats.rows_written, worker.stats.dead_lettered
    assert written + dead == 2_000 and dead <= 1
    rows, keys, latency, events, latency_sum = await _stored(settings)
    assert (rows, keys, events) == (written, written, written)
    assert latency == latency_sum
