"""An insert ClickHouse refuses for its data is dead-lettered, not retried forever; an insert
that fails for want of ClickHouse is retried."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import UsageRecord
from tests.workers.helpers import (
    Tenant,
    cli,
    command,
    committed_offsets,
    in_process_worker,
    produce,
    query,
    usage,
    wait_until,
)
from workers.sink import refused_for_its_data
from workers.tables import USAGE, Lineage

HASH = "sha256:" + "8" * 64


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (DatabaseError("constraint", code=469, name="VIOLATED_CONSTRAINT"), True),
        (DatabaseError("out of range", code=321), True),
        (OperationalError("type mismatch, request retried", code=53), True),
        (DataError("Unable to create native array for column `version`"), True),
        (TypeError("int() argument must be ... not 'NoneType'"), True),
        (OperationalError("Network Error"), False),
        (DatabaseError("memory", code=241, name="MEMORY_LIMIT_EXCEEDED"), False),
        (DatabaseError("too many parts", code=252), False),
        (DatabaseError("HTTP 502 from a proxy"), False),
        (ConnectionResetError("reset by peer"), False),
        (TimeoutError(), False),
    ],
)
def test_only_errors_about_the_data_refuse_an_insert(error: Exception, refused: bool) -> None:
    assert refused_for_its_data(error) is refused


def _unchecked_usage_row(record: UsageRecord, lineage: Lineage) -> list[Any]:
    """What a worker without the UInt32 range check would insert."""
    row = USAGE.to_row(record.model_copy(update={"version": 1}), lineage)
    row[USAGE.columns.index("version")] = record.version
    return row


UNCHECKED = dataclasses.replace(USAGE, to_row=_unchecked_usage_row)


async def _committed(settings: Settings, count: int) -> bool:
    topic = topic_name(settings.kafka_topic_prefix, EventKind.USAGE)
    return (await committed_offsets(settings, [EventKind.USAGE])).get(topic, 0) >= count


async def _refused_block_then_a_good_one(
    settings: Settings,
    refused: list[UsageRecord],
    good: UsageRecord,
    specs: dict[EventKind, Any] | None = None,
) -> None:
    """Send a block the insert refuses for one of its two records, then one good record:
    the record at fault is dead-lettered, its neighbour stored, the block committed, and
    the worker goes on to store the good one."""
    async with in_process_worker(settings, specs=specs) as (worker, _task, _stop):
        await produce(settings, refused)
        await wait_until(lambda: _committed(settings, 2), "the refused block committed")
        await produce(settings, [good])
        await wait_until(lambda: _committed(settings, 3), "the next block committed")
        assert worker.stats.dead_lettered == 1 and worker.stats.rows_written == 2


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_a_block_clickhouse_refuses_is_dead_lettered_and_the_worker_goes_on(
    migrated: Settings,
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    good, later = uuid.uuid4(), uuid.uuid4()
    refused = [
        usage(tenant, prompt, 1, HASH, good),
        usage(tenant, prompt, 2**32 + 5, HASH, uuid.uuid4()),  # decodes; UInt32 cannot hold it
    ]
    await _refused_block_then_a_good_one(
        migrated, refused, usage(tenant, prompt, 1, HASH, later), {EventKind.USAGE: UNCHECKED}
    )
    stored = await query(migrated, "SELECT trace_id FROM usage_links")
    assert sorted(stored) == sorted([(good,), (later,)])
    assert await query(migrated, "SELECT sum(links) FROM usage_hourly") == [(2,)]
    listed = [
        json.loads(line)
        for line in (await cli(migrated, "dead-letters", "list", "--json")).splitlines()
    ]
    assert [entry["source_offset"] for entry in listed] == [1]
    assert all(
        str(entry["reason"]).startswith("refused by ClickHouse: DataError") for entry in listed
    )


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_a_block_the_server_refuses_is_dead_lettered_with_its_error(
    migrated: Settings,
) -> None:
    """Refused by ClickHouse itself (a constraint), not by the driver: the same way out."""
    await command(migrated, "ALTER TABLE usage_links ADD CONSTRAINT early CHECK version < 5")
    tenant, prompt, good, later = Tenant(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    refused = [
        usage(tenant, prompt, 1, HASH, good),
        usage(tenant, prompt, 7, HASH, uuid.uuid4()),  # fits UInt32; the constraint says no
    ]
    await _refused_block_then_a_good_one(migrated, refused, usage(tenant, prompt, 1, HASH, later))
    stored = await query(migrated, "SELECT trace_id FROM usage_links")
    assert sorted(stored) == sorted([(good,), (later,)])
    reasons = [
        str(json.loads(line)["reason"])
        for line in (await cli(migrated, "dead-letters", "list", "--json")).splitlines()
    ]
    assert len(reasons) == 1
    assert reasons[0].startswith("refused by ClickHouse: DatabaseError") and "`early`" in reasons[0]
