"""A block spanning two months is two inserts; a worker that dies between them leaves half a
block, and the next owner reads the other half from Kafka again: nothing lost, nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import (
    SimulatedCrash,
    Tenant,
    analytics,
    committed_offsets,
    in_process_worker,
    produce,
    query,
    wait_until,
)
from workers.sink import ClickHouseSink

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH = "sha256:" + "9" * 64
JANUARY = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, 1, 0, tzinfo=UTC)


class _DiesBetweenMonths(ClickHouseSink):
    """Dies at the second insert of a block: its first month is stored, the next is not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocks: set[tuple[Any, ...]] = set()

    async def write(
        self, table: str, columns: Sequence[str], rows: list[list[Any]], token: str
    ) -> None:
        block = tuple(rows[0][-4:-1])  # first, last, marker
        if block in self.blocks:
            raise SimulatedCrash
        self.blocks.add(block)
        await super().write(table, columns, rows, token)


async def _committed(settings: Settings, count: int) -> bool:
    topic = topic_name(settings.kafka_topic_prefix, EventKind.ANALYTICS)
    return (await committed_offsets(settings, [EventKind.ANALYTICS])).get(topic, 0) >= count


async def _stored(settings: Settings) -> list[tuple[Any, ...]]:
    return await query(
        settings,
        "SELECT toYYYYMM(received_at) AS month, count(), sum(latency_ms),"
        " arraySort(groupArray(kafka_block_rows)) FROM analytics_events"
        " GROUP BY month ORDER BY month",
    )


async def _hourly(settings: Settings) -> list[tuple[Any, ...]]:
    return await query(
        settings,
        "SELECT toYYYYMM(hour) AS month, sum(events), sum(latency_sum) FROM analytics_hourly"
        " GROUP BY month ORDER BY month",
    )


async def test_a_block_stored_in_part_is_completed_from_kafka(migrated: Settings) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()  # one prompt: one partition
    stored_before = analytics(tenant, prompt, HASH, latency=1000, key="early", at=FEBRUARY)
    async with in_process_worker(migrated):
        await produce(migrated, [stored_before])
        await wait_until(lambda: _committed(migrated, 1), "the first event committed")

    january = [
        analytics(tenant, prompt, HASH, latency=n, key=f"jan-{n}", at=JANUARY) for n in (1, 2, 3)
    ]
    february = [
        analytics(tenant, prompt, HASH, latency=n, at=FEBRUARY + timedelta(minutes=n))
        for n in (10, 20)
    ]
    retried = january[0].model_copy(  # the same event retried in February
        update={"event_id": uuid.uuid4(), "received_at": FEBRUARY}
    )
    again = stored_before.model_copy(update={"event_id": uuid.uuid4()})  # stored before
    block = [*january, february[0], retried, again, february[1]]
    await produce(migrated, block)  # read in one block: offsets 1..7
    async with in_process_worker(migrated, sink_type=_DiesBetweenMonths) as (_w, task, _stop):
        with pytest.raises(SimulatedCrash):
            await task
    assert await _stored(migrated) == [(202601, 3, 6.0, [5, 5, 5]), (202602, 1, 1000.0, [1])]

    async with in_process_worker(migrated) as (worker, _task, _stop):
        await wait_until(lambda: _committed(migrated, 8), "the block committed")
        assert worker.stats.blocks_recovered == 1
        # Recovery stored the rest, and the block's records are not read again.
        assert worker.stats.rows_written == worker.stats.duplicates_dropped == 0
    assert await _stored(migrated) == [
        (202601, 3, 6.0, [5, 5, 5]),
        (202602, 3, 1030.0, [1, 5, 5]),
    ]
    assert await _hourly(migrated) == [(202601, 3, 6.0), (202602, 3, 1030.0)]
