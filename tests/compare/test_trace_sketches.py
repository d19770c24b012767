"""Distinct traces come from sketches kept per day and per hour (migration 0011): whole days
from the daily ones, the hours beside them from the hourly ones, the edges from raw links.
Whatever the window, aligned to days or hours or neither, with or without buckets, the
answer is the distinct traces of the links in it, exact on small sets; and an installation
from before the sketches has them filled from the links it already stored."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from compare.queries import BucketKey, Links, Scope, read_figures
from compare.warehouse import Warehouse
from compare.window import Bucket, Window, floor_day, floor_hour
from promptline.settings import Settings
from schemas.records import UsageRecord
from sql import runner
from tests.compare.support import prompt_entry, store
from tests.workers.helpers import Tenant, usage

pytestmark = [pytest.mark.clickhouse]

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
EXACT_UP_TO = 4_095
"""Distinct traces a uniqCombined64 state counts exactly: a hash table up to there, the
4,096th turns it into HyperLogLog."""


def _span() -> uuid.UUID:
    """A span of its own for each link: links with one key are one link (ReplacingMergeTree)."""
    return uuid.uuid4()


def _links(tenant: Tenant, prompt: uuid.UUID, hashes: dict[int, str]) -> list[UsageRecord]:
    """Links over five days at random seconds; a trace is linked again hours or days later,
    or to the other version, so that a distinct count differs from a sum of parts."""
    rng = random.Random(11)
    traces = [uuid.uuid4() for _ in range(300)]
    records = []
    for _ in range(900):
        number = rng.choice((1, 2))
        at = START + timedelta(minutes=rng.randrange(5 * 24 * 60), seconds=rng.randrange(60))
        trace = rng.choice(traces)
        records.append(usage(tenant, prompt, number, hashes[number], trace, span_id=_span(), at=at))
    return records


def _expected(records: list[UsageRecord], scope: Scope) -> dict[tuple[int, BucketKey], Links]:
    """Links and distinct traces per version (and bucket), counted here from the records."""
    window, cut = scope.window, {Bucket.DAY: floor_day, Bucket.HOUR: floor_hour}
    links: dict[tuple[int, BucketKey], int] = defaultdict(int)
    traces: dict[tuple[int, BucketKey], set[uuid.UUID]] = defaultdict(set)
    for record in records:
        at = record.received_at
        if (window.start is not None and at < window.start) or (
            window.end is not None and at >= window.end
        ):
            continue
        keys: list[BucketKey] = [None]
        if scope.bucket is not None:
            keys.append(cut[scope.bucket](at))
        for bucket in keys:
            links[(record.version, bucket)] += 1
            traces[(record.version, bucket)].add(record.trace_id)
    return {key: Links(count, len(traces[key])) for key, count in links.items()}


WINDOWS = {
    "whole history": Window(),
    "whole days": Window(START + DAY, START + 3 * DAY),
    "whole hours, not days": Window(START + DAY + 5 * HOUR, START + 3 * DAY + 7 * HOUR),
    "ragged": Window(
        START + DAY + 5 * HOUR + 17 * MINUTE, START + 3 * DAY + 7 * HOUR + 41 * MINUTE
    ),
    "open start": Window(end=START + 2 * DAY + 9 * HOUR + 3 * MINUTE),
    "open end": Window(START + 2 * DAY + 30 * MINUTE),
    "within a day": Window(START + DAY + 2 * HOUR + MINUTE, START + DAY + 9 * HOUR),
    "within an hour": Window(START + DAY + 2 * HOUR + MINUTE, START + DAY + 2 * HOUR + 9 * MINUTE),
}


@pytest.mark.parametrize("bucket", [None, Bucket.DAY, Bucket.HOUR])
async def test_days_hours_and_edges_count_the_traces_of_the_window(
    settings: Settings, bucket: Bucket | None
) -> None:
    await runner.migrate(settings)
    tenant = Tenant()
    entry = prompt_entry(tenant.project_id, "sketched", 2)
    hashes = {n: entry.versions_by_number[n].content_hash for n in (1, 2)}
    records = _links(tenant, entry.id, hashes)
    await store(settings, records)
    warehouse = Warehouse(settings)
    try:
        for name, window in WINDOWS.items():
            scope = Scope(tenant.project_id, entry.id, window, bucket)
            found = (await read_figures(warehouse.rows, scope)).links
            assert found == _expected(records, scope), name
    finally:
        await warehouse.close()


async def test_linked_traces_are_exact_up_to_the_sketch_threshold(settings: Settings) -> None:
    await runner.migrate(settings)
    tenant = Tenant()
    entry = prompt_entry(tenant.project_id, "many", 1)
    digest = entry.versions_by_number[1].content_hash
    # Spread over three days and every hour, each trace linked twice (hours apart).
    traces = [uuid.uuid4() for _ in range(EXACT_UP_TO)]
    records = [
        usage(tenant, entry.id, 1, digest, trace, span_id=_span(), at=START + n * MINUTE + shift)
        for n, trace in enumerate(traces)
        for shift in (timedelta(0), 5 * HOUR)
    ]
    await store(settings, records)
    warehouse = Warehouse(settings)
    try:
        for window in (Window(), Window(START + 7 * MINUTE, START + 4 * DAY)):
            for bucket in (None, Bucket.DAY):
                scope = Scope(tenant.project_id, entry.id, window, bucket)
                found = (await read_figures(warehouse.rows, scope)).links
                assert found == _expected(records, scope)
                assert found[(1, None)].traces == EXACT_UP_TO
    finally:
        await warehouse.close()


async def test_the_migration_fills_the_sketches_from_the_links_stored_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = runner.load_migrations
    monkeypatch.setattr(runner, "load_migrations", lambda: [m for m in shipped() if m.version < 11])
    await runner.migrate(settings)  # an installation from before the sketches
    tenant = Tenant()
    entry = prompt_entry(tenant.project_id, "before", 2)
    hashes = {n: entry.versions_by_number[n].content_hash for n in (1, 2)}
    records = _links(tenant, entry.id, hashes)
    await store(settings, records)
    monkeypatch.setattr(runner, "load_migrations", shipped)
    assert [m.version for m in await runner.migrate(settings)] == [11]
    warehouse = Warehouse(settings)
    try:
        for window in (Window(), WINDOWS["ragged"]):
            for bucket in (None, Bucket.DAY, Bucket.HOUR):
                scope = Scope(tenant.project_id, entry.id, window, bucket)
                found = (await read_figures(warehouse.rows, scope)).links
                assert found == _expected(records, scope)
    finally:
        await warehouse.close()
