"""The lookup's key table (migration 0010) holds a key exactly when a raw table holds its row:
filled for what was stored before the migration, emptied with the rows a refused view made
the worker undo, kept with the rows an analyst's view could not undo; and an event older
than the table keeps is still looked up, in the raw table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from promptline.clickhouse import connect
from promptline.settings import Settings
from sql import runner
from sql.key_retention import FLOOR_DAYS
from tests.workers.helpers import (
    SimulatedCrash,
    Tenant,
    analytics,
    command,
    in_process_worker,
    millis,
    produce,
    query,
    wait_until,
)
from tests.workers.test_partly_stored_block import _committed as _partition_committed
from tests.workers.test_refusal_splitting import HASH, POISON, _committed, _events, _poisoned, _view
from workers.dedup import DuplicateFinder
from workers.sink import ClickHouseSink
from workers.tables import ANALYTICS, Lineage

pytestmark = [pytest.mark.clickhouse]


async def _identities(settings: Settings, table: str, where: str = "1") -> list[tuple[object, ...]]:
    return await query(
        settings,
        f"SELECT project_id, prompt_id, dedup_key FROM {table} WHERE {where}"
        " ORDER BY project_id, prompt_id, dedup_key",
    )


async def _keys_match_rows(settings: Settings) -> bool:
    keys = await _identities(settings, "dedup_keys", "source_table = 'analytics_events'")
    rows = await _identities(settings, "analytics_events")
    return bool(rows) and sorted(set(keys)) == rows


async def _one_block_with_a_poisoned_record(migrated: Settings) -> tuple[int, int]:
    """A worker's rows written and records dead-lettered for one block of 200 records, the
    hundredth of which has the latency views may refuse."""
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 200, "worker_batch_max_seconds": 30.0}
    )
    await produce(settings, _events(200, poison_at=100))
    async with in_process_worker(settings) as (worker, _task, _stop):
        await wait_until(lambda: _committed(settings), "the block committed", within=240)
        return worker.stats.rows_written, worker.stats.dead_lettered


async def test_the_migration_fills_the_keys_of_what_was_stored_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = runner.load_migrations
    monkeypatch.setattr(runner, "load_migrations", lambda: [m for m in shipped() if m.version < 10])
    await runner.migrate(settings)  # an installation from before the key table
    tenant, prompt = Tenant(), uuid.uuid4()
    now = millis()
    rows = [
        ANALYTICS.to_row(analytics(tenant, prompt, HASH, key=f"before-{n}", at=now), Lineage(0, n))
        for n in range(5)
    ]
    old = analytics(tenant, prompt, HASH, key="long-ago", at=now - timedelta(days=FLOOR_DAYS + 9))
    rows.append(ANALYTICS.to_row(old, Lineage(0, 5)))
    client = await connect(settings)
    try:
        await client.insert(ANALYTICS.table, rows, column_names=list(ANALYTICS.columns))
        monkeypatch.setattr(runner, "load_migrations", shipped)
        assert next(m.version for m in await runner.migrate(settings)) == 10
        keys = await _identities(settings, "dedup_keys")
        assert keys == sorted((tenant.project_id, prompt, f"before-{n}") for n in range(5))
        # What the key table never held is read from the raw table: a late replay is caught.
        finder = DuplicateFinder(ClickHouseSink(client), timedelta(days=7))
        assert await finder.stored_keys(ANALYTICS, rows) == {ANALYTICS.key(row) for row in rows}
    finally:
        await client.close()


@pytest.mark.kafka
async def test_a_refused_piece_takes_its_keys_with_it(migrated: Settings) -> None:
    """The hourly view refuses one record: what the key view had of the refused insert is
    undone with the raw rows, so the record's replay, once the view is fixed, is stored."""
    await _view(migrated, _poisoned("latency_ms"))
    assert await _one_block_with_a_poisoned_record(migrated) == (199, 1)
    assert await _keys_match_rows(migrated)
    assert await query(migrated, "SELECT count() FROM dedup_keys") == [(199,)]


@pytest.mark.kafka
async def test_rows_an_analysts_view_refused_keep_their_keys(migrated: Settings) -> None:
    """A view of an analyst's refuses a record: if ours had counted the insert, its rows stay,
    and so must their keys, whether or not the key view ran before the refusal."""
    refuse = f"throwIf(latency_ms = {POISON}, 'no', toInt16(4244))"
    await command(
        migrated,
        f"CREATE MATERIALIZED VIEW analyst_mv ENGINE = Memory AS SELECT {refuse} AS refused"
        " FROM analytics_events SETTINGS allow_custom_error_code_in_throwif = 1",
    )
    assert await _one_block_with_a_poisoned_record(migrated) in ((199, 1), (200, 0))
    assert await _keys_match_rows(migrated)


class _DiesAfterItsInsert(ClickHouseSink):
    """Stores a block, then dies before its offsets are committed."""

    async def write(
        self, table: str, columns: Sequence[str], rows: list[list[Any]], token: str
    ) -> None:
        await super().write(table, columns, rows, token)
        raise SimulatedCrash


@pytest.mark.kafka
async def test_a_recovered_block_gets_back_keys_its_rows_lost(migrated: Settings) -> None:
    """A worker that died while undoing a refused piece (keys deleted, rows not yet) left rows
    without keys; the next owner recovers the block and puts their keys back, so a later
    copy of one of those events is dropped, not stored twice."""
    tenant, prompt = Tenant(), uuid.uuid4()  # one prompt: one partition
    sent = [analytics(tenant, prompt, HASH, latency=n, key=f"key-{n}") for n in (1, 2, 3)]
    await produce(migrated, sent)
    async with in_process_worker(migrated, sink_type=_DiesAfterItsInsert) as (_w, task, _stop):
        with pytest.raises(SimulatedCrash):
            await task
    await command(migrated, "DELETE FROM dedup_keys WHERE 1")  # died between the two deletes
    assert await query(migrated, "SELECT count() FROM analytics_events") == [(3,)]

    async with in_process_worker(migrated) as (worker, _task, _stop):
        await wait_until(lambda: _partition_committed(migrated, 3), "the block committed")
        assert worker.stats.blocks_recovered == 1
        assert await _keys_match_rows(migrated)
        late = sent[0].model_copy(update={"event_id": uuid.uuid4()})
        await produce(migrated, [late])
        await wait_until(lambda: _partition_committed(migrated, 4), "the late copy read")
        assert worker.stats.duplicates_dropped == 1
    assert await query(migrated, "SELECT count() FROM analytics_events") == [(3,)]
