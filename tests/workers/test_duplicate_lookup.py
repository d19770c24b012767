"""The duplicate lookup against ClickHouse: keys sent as data find exactly what is stored.

The identities travel as an external table, so any key a client may send (quotes,
backslashes, tabs, newlines, long or empty) must come back as itself; a lookup past
``LOOKUP_CHUNK`` keys is several queries; and the lookback window still bounds it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from promptline.clickhouse import connect
from promptline.settings import Settings
from tests.workers.helpers import millis
from workers.dedup import LOOKUP_CHUNK, DuplicateFinder
from workers.sink import ClickHouseSink
from workers.tables import ANALYTICS, Key, Lineage

pytestmark = pytest.mark.clickhouse

AWKWARD = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "ends with \\",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "nul\0byte",
    "ünïcødé ✓",
    "k" * 255,
    "\\N",
    "[1,2]",
]


def _row(project: uuid.UUID, prompt: uuid.UUID, key: str, at: datetime, n: int) -> list[object]:
    event = uuid.uuid4()
    return [event, at, uuid.uuid4(), project, prompt, "h", None, None, None, key, 0, n]


async def test_stored_identities_are_found_whatever_their_keys(migrated: Settings) -> None:
    client = await connect(migrated)
    sink = ClickHouseSink(client)
    try:
        project, prompt, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = millis()
        stored = [_row(project, prompt, key, now, n) for n, key in enumerate(AWKWARD)]
        stored.append(_row(project, prompt, "old", now - timedelta(days=30), 99))
        await client.insert(
            ANALYTICS.table, stored, column_names=list(ANALYTICS.columns), settings={}
        )
        many = [f"many-{n}" for n in range(LOOKUP_CHUNK + 5)]
        # Stored: every awkward key; asked: those, near misses, and more keys than a chunk.
        asked = [
            *(_row(project, prompt, key, now, 0) for key in AWKWARD),
            *(_row(project, other, key, now, 0) for key in AWKWARD[:3]),  # another prompt
            *(_row(project, prompt, key + "x", now, 0) for key in AWKWARD[:3]),
            *(_row(project, prompt, key, now, 0) for key in many),
            _row(project, prompt, "old", now, 0),
        ]
        expected: set[Key] = {(project.int, prompt.int, key) for key in AWKWARD}
        windowed = DuplicateFinder(sink, timedelta(days=7))
        assert await windowed.stored_keys(ANALYTICS, asked) == expected
        unbounded = DuplicateFinder(sink, None)
        old = (project.int, prompt.int, "old")
        assert await unbounded.stored_keys(ANALYTICS, asked) == expected | {old}
    finally:
        await client.close()


def test_a_row_made_by_decode_has_the_identity_the_lookup_reads() -> None:
    row = ANALYTICS.to_row(
        ANALYTICS.record.model_validate(
            {
                "event_id": str(uuid.uuid4()),
                "received_at": datetime.now(UTC).isoformat(),
                "org_id": str(uuid.uuid4()),
                "project_id": str(uuid.uuid4()),
                "prompt_id": str(uuid.uuid4()),
                "version_hash": "h",
                "idempotency_key": "tab\tkey",
            }
        ),
        Lineage(0, 0),
    )
    assert ANALYTICS.identity(row)[2] == "tab\tkey"
