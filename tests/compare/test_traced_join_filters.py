"""Trace-only votes are the same whatever the server does to speed up their join.

Compare joins the links with the traces that trace-only signals name, so a server with
runtime join filters drops the other links as it reads them: by the exact set of those
traces when they are few, by a bloom filter (which lets some others through) when many.
Each kind of window, with and without buckets, is counted here from the records and must
come out the same with the bloom filter, with the exact set, and with no filter at all.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from compare.queries import BucketKey, Scope, traced_votes_sql
from compare.window import Bucket, floor_day, floor_hour
from promptline.clickhouse import connect
from promptline.settings import Settings
from schemas.records import RecordBase, SignalRecord, UsageRecord
from sql.runner import migrate
from tests.compare.support import prompt_entry, store
from tests.compare.test_trace_sketches import WINDOWS
from tests.workers.helpers import Tenant, signal, usage

pytestmark = [pytest.mark.clickhouse]

START = datetime(2026, 3, 2, tzinfo=UTC)
FILTERS: dict[str, dict[str, Any]] = {
    "bloom filter": {"enable_join_runtime_filters": 1, "join_runtime_filter_exact_values_limit": 0},
    "exact set": {"enable_join_runtime_filters": 1},
    "no filter": {"enable_join_runtime_filters": 0},
}
Counts = dict[tuple[int, BucketKey], tuple[int, int]]


def _records(tenant: Tenant, prompt: uuid.UUID, hashes: dict[int, str]) -> list[RecordBase]:
    """Links over five days, some traces linked to both versions or twice; signals that
    name a linked trace, a trace no link names, or none, before or after their links."""
    rng = random.Random(7)
    traces = [uuid.uuid4() for _ in range(200)]

    def at() -> datetime:
        return START + timedelta(minutes=rng.randrange(5 * 24 * 60), seconds=rng.randrange(60))

    records: list[RecordBase] = []
    for _ in range(600):
        number = rng.choice((1, 2))
        trace = rng.choice(traces)
        records.append(
            usage(tenant, prompt, number, hashes[number], trace, span_id=uuid.uuid4(), at=at())
        )
    named = [*rng.sample(traces, 120), *(uuid.uuid4() for _ in range(20))]
    for trace in named:
        value: Literal["positive", "negative"] = "positive" if rng.random() < 0.6 else "negative"
        records.append(signal(tenant, prompt, value, metadata={"trace_id": str(trace)}, at=at()))
    records.extend(signal(tenant, prompt, "negative", at=at()) for _ in range(10))
    return records


def _expected(records: list[RecordBase], scope: Scope) -> Counts:
    """Each trace-only signal in the window once per version its trace is linked to (0 if
    none), per bucket and over the whole window."""
    versions: dict[uuid.UUID, set[int]] = defaultdict(set)
    for record in records:
        if isinstance(record, UsageRecord):
            versions[record.trace_id].add(record.version)
    window, cut = scope.window, {Bucket.DAY: floor_day, Bucket.HOUR: floor_hour}
    counts: dict[tuple[int, BucketKey], list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        if not isinstance(record, SignalRecord):
            continue
        moment = record.received_at
        if (window.start is not None and moment < window.start) or (
            window.end is not None and moment >= window.end
        ):
            continue
        trace = (record.metadata or {}).get("trace_id")
        linked = versions.get(uuid.UUID(trace), set()) if trace else set()
        buckets: list[BucketKey] = [None if scope.bucket is None else cut[scope.bucket](moment)]
        for version in linked or {0}:
            for bucket in buckets:
                counts[(version, bucket)][record.value == "negative"] += 1
    return {key: (positive, negative) for key, (positive, negative) in counts.items()}


@pytest.mark.parametrize("bucket", [None, Bucket.DAY, Bucket.HOUR])
async def test_trace_only_votes_are_the_same_with_or_without_a_join_filter(
    settings: Settings, bucket: Bucket | None
) -> None:
    await migrate(settings)
    tenant = Tenant()
    entry = prompt_entry(tenant.project_id, "filtered", 2)
    hashes = {n: entry.versions_by_number[n].content_hash for n in (1, 2)}
    records = _records(tenant, entry.id, hashes)
    await store(settings, records)
    client = await connect(settings)
    try:
        for name, window in WINDOWS.items():
            scope = Scope(tenant.project_id, entry.id, window, bucket)
            sql, parameters = traced_votes_sql(scope)
            expected = _expected(records, scope)
            for how, chosen in FILTERS.items():
                rows = (await client.query(sql, parameters=parameters, settings=chosen)).result_rows
                found: Counts = {
                    (int(row[0]), None if bucket is None else row[1].replace(tzinfo=UTC)): (
                        int(row[-2]),
                        int(row[-1]),
                    )
                    for row in rows
                }
                assert found == expected, (name, how)
    finally:
        await client.close()
