"""SIGKILL workers mid-stream, restart, and compare ClickHouse with what was sent: exactly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import AnalyticsRecord, RecordBase, SignalRecord, UsageRecord
from tests.workers.helpers import (
    Tenant,
    committed_offsets,
    fleet,
    produce,
    query,
    scalar,
    wait_until,
)
from tests.workers.stream import PromptUnderTest, Stream, build_stream

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

RAW: dict[type[RecordBase], str] = {
    AnalyticsRecord: "analytics_events",
    SignalRecord: "signal_events",
    UsageRecord: "usage_links",
}
KINDS: dict[type[RecordBase], EventKind] = {
    AnalyticsRecord: EventKind.ANALYTICS,
    SignalRecord: EventKind.SIGNAL,
    UsageRecord: EventKind.USAGE,
}


async def produce_slowly(settings: Settings, records: list[RecordBase], chunks: int) -> None:
    """Send over a few seconds, so that workers die and start while events still arrive."""
    size = -(-len(records) // chunks)
    for start in range(0, len(records), size):
        await produce(settings, records[start : start + size])
        await asyncio.sleep(0.3)


async def stored(settings: Settings) -> int:
    total = 0
    for table in RAW.values():
        total += int(await scalar(settings, f"SELECT count() FROM {table}"))
    return total


async def all_committed(settings: Settings, stream: Stream) -> bool:
    committed = await committed_offsets(settings, list(EventKind))
    for kind, event_kind in KINDS.items():
        topic = topic_name(settings.kafka_topic_prefix, event_kind)
        if committed.get(topic, 0) < stream.sent_count(kind):
            return False
    return True


async def test_killed_workers_neither_lose_nor_double_count(
    migrated: Settings, tmp_path: Path
) -> None:
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 25, "worker_batch_max_seconds": 0.1}
    )
    tenant = Tenant()
    prompts = [
        PromptUnderTest(uuid.uuid4(), {1: "sha256:" + "1" * 64, 2: "sha256:" + "2" * 64}),
        PromptUnderTest(uuid.uuid4(), {1: "sha256:" + "3" * 64, 3: "sha256:" + "4" * 64}),
    ]
    stream = build_stream(tenant, prompts, analytics_events=900, signals=300, links=200, seed=7)
    unique = len(stream.unique)
    sending = asyncio.create_task(produce_slowly(settings, stream.sent, chunks=30))
    async with fleet(settings, tmp_path) as workers:
        try:
            first = await workers.start()
            await wait_until(lambda: _more_than(settings, unique // 5), "a fifth stored", 60)
            await first.kill()
            at_first_kill = await stored(settings)

            second = await workers.start()
            await wait_until(lambda: _more_than(settings, at_first_kill + 100), "progress", 90)
            await second.kill()

            await workers.start()  # the third, which finishes the job
            await sending
            await wait_until(lambda: all_committed(settings, stream), "all committed", 120)
        finally:
            sending.cancel()
    assert at_first_kill < unique

    await _assert_each_event_stored_once(settings, prompts, stream)


async def test_workers_joining_and_leaving_mid_stream_store_each_event_once(
    migrated: Settings, tmp_path: Path
) -> None:
    """A live rebalance: two workers share the stream, a third joins, the first leaves with
    SIGTERM (it flushes, commits and leaves the group), all while events arrive."""
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 25, "worker_batch_max_seconds": 0.1}
    )
    tenant = Tenant()
    prompts = [
        PromptUnderTest(uuid.uuid4(), {1: "sha256:" + "5" * 64, 2: "sha256:" + "6" * 64}),
        PromptUnderTest(uuid.uuid4(), {2: "sha256:" + "7" * 64, 4: "sha256:" + "8" * 64}),
        PromptUnderTest(uuid.uuid4(), {1: "sha256:" + "9" * 64}),
    ]
    stream = build_stream(tenant, prompts, analytics_events=900, signals=300, links=200, seed=11)
    unique = len(stream.unique)
    sending = asyncio.create_task(produce_slowly(settings, stream.sent, chunks=30))
    async with fleet(settings, tmp_path) as workers:
        try:
            first = await workers.start()
            await workers.start()
            await wait_until(lambda: _more_than(settings, unique // 5), "a fifth stored", 60)
            await workers.start()  # joins: the group rebalances under load
            at_join = await stored(settings)
            await wait_until(lambda: _more_than(settings, at_join + 100), "progress", 90)
            await first.stop()  # SIGTERM: leaves the group gracefully, mid-stream
            assert first.process is not None and first.process.returncode == 0, first.log()
            await sending
            await wait_until(lambda: all_committed(settings, stream), "all committed", 120)
        finally:
            sending.cancel()
    assert at_join < unique  # the third worker joined while events were still arriving

    await _assert_each_event_stored_once(settings, prompts, stream)


async def _assert_each_event_stored_once(
    settings: Settings, prompts: list[PromptUnderTest], stream: Stream
) -> None:
    """Every raw table holds each sent event exactly once, and the aggregates agree."""
    for kind, table in RAW.items():
        count, identities = (
            await query(
                settings,
                f"SELECT count(), uniqExact(project_id, prompt_id, dedup_key) FROM {table}",
            )
        )[0]
        assert (count, identities) == (stream.count(kind), stream.count(kind)), table
    for prompt in prompts:
        await _assert_aggregates(settings, prompt, stream)


async def _more_than(settings: Settings, rows: int) -> bool:
    return await stored(settings) > rows


async def _assert_aggregates(settings: Settings, prompt: PromptUnderTest, stream: Stream) -> None:
    expected = stream.totals(prompt)
    number_of = {digest: number for number, digest in prompt.hashes.items()}
    rows = await query(
        settings,
        "SELECT version_hash, sum(events), sum(latency_count), sum(latency_sum),"
        " sum(latency_sum_sq), sum(cost_count), sum(cost_sum), sum(cost_sum_sq),"
        " sum(score_count), sum(score_sum), sum(score_sum_sq)"
        " FROM analytics_hourly WHERE prompt_id = {p:UUID} GROUP BY version_hash",
        p=prompt.id,
    )
    assert len(rows) == len(prompt.hashes)
    for digest, *figures in rows:
        totals = expected[number_of[digest]]
        assert figures == [
            totals.events,
            totals.latency.count,
            totals.latency.total,
            totals.latency.total_sq,
            totals.cost.count,
            totals.cost.total,
            totals.cost.total_sq,
            totals.score.count,
            totals.score.total,
            totals.score.total_sq,
        ]
    signals = await query(
        settings,
        "SELECT version, sum(positive), sum(negative) FROM signals_hourly"
        " WHERE prompt_id = {p:UUID} GROUP BY version",
        p=prompt.id,
    )
    assert {row[0]: (row[1], row[2]) for row in signals} == {
        number: (totals.positive, totals.negative) for number, totals in expected.items()
    }
    links = await query(
        settings,
        "SELECT version, sum(links), uniqExactMerge(traces) FROM usage_hourly"
        " WHERE prompt_id = {p:UUID} GROUP BY version",
        p=prompt.id,
    )
    assert {row[0]: (row[1], row[2]) for row in links} == {
        number: (totals.links, len(totals.traces)) for number, totals in expected.items()
    }
