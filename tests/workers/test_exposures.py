"""Exposures from Kafka to ClickHouse: stored once, exact distinct units, poison parked, kept
for the exposure retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from promptline.commands.deadletters import read_dead_letters
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import ExposureRecord
from sql.retention import EXPOSURE_TABLES, RAW_TABLES, TTL_TIME, ttl_clause
from sql.runner import migrate
from tests.workers.helpers import (
    Tenant,
    committed_offsets,
    exposure,
    in_process_worker,
    millis,
    produce,
    query,
    table_engines,
    wait_until,
)
from workers.decode import Poison, decode
from workers.tables import EXPOSURES, NEVER_DEPLOYED, Lineage

HASH = "sha256:" + "4" * 64


async def _committed(settings: Settings, count: int) -> bool:
    topic = topic_name(settings.kafka_topic_prefix, EventKind.EXPOSURE)
    return (await committed_offsets(settings, [EventKind.EXPOSURE])).get(topic, 0) >= count


def test_an_exposure_becomes_one_row_keyed_by_its_idempotency_key_or_id() -> None:
    tenant, prompt, deployment = Tenant(), uuid.uuid4(), uuid.uuid4()
    keyed = exposure(tenant, prompt, 4, "unit-1", deployment_id=deployment, key="sdk-1")
    row = decode(EXPOSURES, keyed.to_bytes(), Lineage(2, 17))
    assert not isinstance(row, Poison)
    named = dict(zip(EXPOSURES.columns, row, strict=True))
    assert named["deployment_id"] == deployment and named["version"] == 4
    assert named["dedup_key"] == "sdk-1" and named["by_split"] is True
    assert (named["kafka_partition"], named["kafka_offset"]) == (2, 17)
    assert EXPOSURES.identity(row) == (tenant.project_id, prompt, "sdk-1")
    never = exposure(tenant, prompt, 1, "unit-2", by_split=False, rule="latest")
    row = decode(EXPOSURES, never.to_bytes(), Lineage(0, 0))
    assert not isinstance(row, Poison)
    named = dict(zip(EXPOSURES.columns, row, strict=True))
    assert named["deployment_id"] == NEVER_DEPLOYED and named["dedup_key"] == str(never.event_id)


def test_the_wire_form_is_the_documented_one() -> None:
    record = exposure(
        Tenant(),
        uuid.uuid4(),
        4,
        "u" * 64,
        version_hash=HASH,
        deployment_id=uuid.uuid4(),
        at=datetime(2026, 12, 7, 1, 2, 3, 456_000, tzinfo=UTC),
    )
    data = orjson.loads(record.to_bytes())
    assert data["received_at"] == "2026-12-07T01:02:03.456Z"
    assert set(data) == set(ExposureRecord.model_fields) - {"idempotency_key"}
    assert (data["v"], data["kind"], data["source"], data["by_split"]) == (
        1,
        "exposure",
        "resolve",
        True,
    )
    undeployed = orjson.loads(exposure(Tenant(), uuid.uuid4(), 1, "u").to_bytes())
    assert "deployment_id" not in undeployed and "idempotency_key" not in undeployed


BAD_FIELDS = [
    ({"version": 0}, "version"),
    ({"version": 2**31}, "version"),
    ({"version": "4"}, "version"),
    ({"version_hash": "sha256:XYZ"}, "version_hash"),
    ({"unit_id": ""}, "unit_id"),
    ({"unit_id": "u" * 1001}, "unit_id"),
    ({"rule": ""}, "rule"),
    ({"by_split": "yes"}, "by_split"),
    ({"source": "guess"}, "source"),
    ({"deployment_id": "dep_1"}, "deployment_id"),
    ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_a_record_outside_the_domains_is_poison(change: dict[str, object], field: str) -> None:
    data = orjson.loads(exposure(Tenant(), uuid.uuid4(), 4, "u").to_bytes()) | change
    outcome = decode(EXPOSURES, orjson.dumps(data), Lineage(0, 0))
    assert isinstance(outcome, Poison)
    assert outcome.reason.startswith(f"schema mismatch: {field}")


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_exposures_produced_twice_are_stored_once_and_units_counted_exactly(
    migrated: Settings,
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    deployment = uuid.uuid4()
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    first = [
        exposure(tenant, prompt, 1 + n % 2, f"unit-{n % 4}", deployment_id=deployment, at=hour_ago)
        for n in range(10)
    ]
    reported = exposure(tenant, prompt, 2, "unit-9", source="client", key="sdk-9")
    retried = reported.model_copy(update={"event_id": uuid.uuid4(), "received_at": millis()})
    ruled = exposure(tenant, prompt, 2, "unit-0", deployment_id=deployment, by_split=False)
    async with in_process_worker(migrated):
        await produce(migrated, [*first, reported, ruled])
        await wait_until(lambda: _committed(migrated, 12), "first copies committed")
        # The same records again (a producer retry, a replay) and a client's retry by key.
        await produce(migrated, [*first, retried])
        await wait_until(lambda: _committed(migrated, 23), "copies committed")

    assert await query(migrated, "SELECT count(), uniqExact(dedup_key) FROM exposure_events") == [
        (12, 12)
    ]
    [(source, received)] = await query(
        migrated, "SELECT source, received_at FROM exposure_events WHERE dedup_key = 'sdk-9'"
    )
    assert source == "client" and received.replace(tzinfo=UTC) == reported.received_at
    hourly = await query(
        migrated,
        "SELECT version, by_split, sum(exposures), uniqExactMerge(units) FROM exposures_hourly"
        " WHERE project_id = {p:UUID} AND prompt_id = {q:UUID}"
        " GROUP BY version, by_split ORDER BY version, by_split",
        p=tenant.project_id,
        q=prompt,
    )
    # The split: v1 got units 0 and 2 (five exposures), v2 units 1 and 3 (five) and the
    # client's unit 9, once however often sent. The targeting rule's exposure of unit 0 to
    # v2 is counted apart from the split's.
    assert hourly == [(1, True, 5, 2), (2, False, 1, 1), (2, True, 6, 3)]


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_a_bad_exposure_is_dead_lettered_and_the_rest_stored(migrated: Settings) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.EXPOSURE)
    good = exposure(tenant, prompt, 3, "unit-1")
    bad = orjson.loads(exposure(tenant, prompt, 3, "unit-2").to_bytes()) | {"version": 0}
    async with in_process_worker(migrated) as (worker, _task, _stop):
        await produce(migrated, [(topic, str(prompt).encode(), orjson.dumps(bad)), good])
        await wait_until(lambda: _committed(migrated, 2), "both read")
        await wait_until(lambda: worker.stats.dead_lettered == 1, "poison parked")
    assert await query(migrated, "SELECT unit_id FROM exposure_events") == [("unit-1",)]
    [letter] = await read_dead_letters(migrated)
    assert letter.source_topic == topic and letter.reason.startswith("schema mismatch: version")
    assert letter.value == orjson.dumps(bad)


@pytest.mark.clickhouse
async def test_exposure_retention_sets_both_tables_ttl_and_nothing_else(settings: Settings) -> None:
    await migrate(settings)  # default: 90 days
    engines = await table_engines(settings)
    for table in EXPOSURE_TABLES:
        assert ttl_clause(90, TTL_TIME.get(table, "toDateTime(received_at)")) in engines[table]
    assert all(" TTL " not in engines[table] for table in RAW_TABLES)
    await migrate(settings.model_copy(update={"exposure_retention_days": 30}))
    engines = await table_engines(settings)
    assert ttl_clause(30) in engines["exposure_events"]
    assert ttl_clause(30, "hour") in engines["exposures_hourly"]
    await migrate(settings.model_copy(update={"exposure_retention_days": 0}))
    engines = await table_engines(settings)
    assert all(" TTL " not in engines[table] for table in EXPOSURE_TABLES)


def test_exposure_retention_must_cover_the_duplicate_lookup() -> None:
    with pytest.raises(ValueError, match="exposure_retention_days=3"):
        Settings(exposure_retention_days=3, worker_dedup_window_days=7)
    assert Settings(exposure_retention_days=90, worker_dedup_window_days=0)
    assert Settings(exposure_retention_days=0).exposure_retention_days == 0
