"""Signals that name only a trace count for every version a usage link ties that trace to.

The join reads only the links of the traces such signals name; these cases pin the answer
it must keep: links of other traces change nothing, a link counts whenever it came (before
or after the signal, inside the window or not), a trace linked to two versions counts for
both, two spans of one trace count once, and a trace no link names is unattributed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from compare.queries import BucketKey, Scope, Votes, read_figures
from compare.warehouse import Warehouse
from compare.window import Bucket, Window
from promptline.settings import Settings
from schemas.records import RecordBase
from sql.runner import migrate
from tests.compare.support import prompt_entry, store
from tests.workers.helpers import Tenant, signal, usage

pytestmark = [pytest.mark.clickhouse]

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Value = Literal["positive", "negative"]


async def test_trace_only_signals_count_for_the_versions_their_trace_is_linked_to(
    settings: Settings,
) -> None:
    await migrate(settings)
    tenant = Tenant()
    entry = prompt_entry(tenant.project_id, "traced", 2)
    hashes = {n: entry.versions_by_number[n].content_hash for n in (1, 2)}
    one, both, late, unlinked = (uuid.uuid4() for _ in range(4))

    def link(number: int, trace: uuid.UUID, hours: float) -> RecordBase:
        return usage(
            tenant,
            entry.id,
            number,
            hashes[number],
            trace,
            span_id=uuid.uuid4(),
            at=START + timedelta(hours=hours),
        )

    def vote(value: Value, trace: uuid.UUID | None, hours: float) -> RecordBase:
        metadata = None if trace is None else {"trace_id": str(trace)}
        return signal(tenant, entry.id, value, metadata=metadata, at=START + timedelta(hours=hours))

    records = [
        link(1, one, 0),
        link(1, one, 0.5),  # a second span of the same trace: still one link to version 1
        link(1, both, 1),
        link(2, both, 30),  # the same trace, linked to version 2 a day later
        link(2, late, 40),  # linked long after its signal, and after the window below
        *(link(1, uuid.uuid4(), 2) for _ in range(50)),  # traces no signal names
        vote("positive", one, 1),
        vote("negative", one, 26),
        vote("positive", both, 2),
        vote("negative", late, 3),
        vote("positive", unlinked, 3),
        vote("negative", None, 4),
    ]
    await store(settings, records)

    warehouse = Warehouse(settings)
    try:

        async def traced(
            window: Window, bucket: Bucket | None = None
        ) -> dict[tuple[int, BucketKey], Votes]:
            scope = Scope(tenant.project_id, entry.id, window, bucket)
            return (await read_figures(warehouse.rows, scope)).traced_votes

        assert await traced(Window()) == {
            (1, None): Votes(positive=2, negative=1),  # one (twice) and both
            (2, None): Votes(positive=1, negative=1),  # both, and late
            (0, None): Votes(positive=1, negative=1),  # the unlinked trace, and no trace
        }
        first_day = Window(START, START + timedelta(hours=24))
        assert await traced(first_day) == {
            (1, None): Votes(positive=2, negative=0),
            (2, None): Votes(positive=1, negative=1),
            (0, None): Votes(positive=1, negative=1),
        }
        by_day = await traced(Window(), Bucket.DAY)
        day_one, day_two = START.replace(hour=0), START.replace(hour=0) + timedelta(days=1)
        assert by_day[(1, day_one)] == Votes(positive=2, negative=0)
        assert by_day[(1, day_two)] == Votes(positive=0, negative=1)
        assert by_day[(2, day_one)] == Votes(positive=1, negative=1)
        assert by_day[(1, None)] == Votes(positive=2, negative=1)
    finally:
        await warehouse.close()
