"""Which events of a batch are already stored: the guard against duplicates across batches.

A client that retries with the same idempotency key, a dead letter replayed twice, or a
record the producer sent twice sends the same event in records that land in different
batches, perhaps days apart; a deduplication token cannot see that. So before inserting,
the worker asks which identities of the batch are already stored (within the lookback
window) and drops them. This is free of races because one partition has one owner at a
time and records are keyed by prompt, so all copies of an event pass through the same
worker, in order.

The lookup reads ``dedup_keys`` (migration 0010), which the raw tables' views feed and which
is ordered by the identity, so its cost does not grow with the traffic stored. That table
keeps the period its comment states, read from it (``workers/key_retention.py``; migrate
sets it from the window); where the window reaches further back (a dead letter replayed
weeks late, a worker far behind), the raw table itself is read, as before.
Identities are compared as :data:`Key` values (ints and text), whose hashing is C's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from workers.key_retention import KeyRetention
from workers.sink import ClickHouseSink, Table
from workers.tables import Key, TableSpec

LOOKUP_CHUNK = 10_000
"""Identities per lookup query: a whole batch at the default batch size."""
LOOKUP_TABLE = "lookup"
LOOKUP_STRUCTURE = "project_id UUID, prompt_id UUID, dedup_key String"
KEY_LOOKUP_STRUCTURE = (
    "source_table Enum8('analytics_events' = 1, 'signal_events' = 2, 'usage_links' = 3,"
    f" 'exposure_events' = 4), {LOOKUP_STRUCTURE}"
)
"""``dedup_keys``'s own types (migration 0010), so the set is of its key's types."""
KEY_TABLE = "dedup_keys"
KEY_COLUMNS = (
    "project_id, prompt_id, dedup_key, received_at,"
    " kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece"
)
"""The columns of ``dedup_keys`` after ``source_table``, as a raw table names them."""
KEYS_MARGIN = timedelta(days=1)
"""Kept off the key table's period: the worker's clock and the server's need not agree."""
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
"""TabSeparated escaping of a key: any text may be a client's idempotency key."""
_ESCAPED = re.compile(r"[\\\t\n\r\0]")
"""What needs escaping; looked for first, as ``str.translate`` costs microseconds a key."""
_by_key = itemgetter(2)
_escaped = _ESCAPED.search


def first_copies(
    spec: TableSpec, rows: Sequence[list[Any]], stored: set[Key], seen: set[Key]
) -> list[int]:
    """The indexes of ``rows`` to insert: not ``stored``, and the first of their identity
    (first one wins); ``seen`` is updated with what is kept, across the blocks of a batch."""
    kept: list[int] = []
    key = spec.key
    add = seen.add
    for index, row in enumerate(rows):
        identity = key(row)
        if identity in stored or identity in seen:
            continue
        add(identity)
        kept.append(index)
    return kept


class DuplicateFinder:
    """Looks identities up, ``window`` back from the batch's oldest event (None: forever)."""

    def __init__(
        self,
        sink: ClickHouseSink,
        window: timedelta | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sink = sink
        self._window = window
        self._now = now
        self._retention = KeyRetention(sink.rows)

    async def stored_keys(self, spec: TableSpec, rows: Sequence[list[Any]]) -> set[Key]:
        """The identities among ``rows`` already stored, as :data:`Key` values."""
        return (await self.stored_by_table([(spec, rows)]))[spec.table]

    async def stored_by_table(
        self, batches: Sequence[tuple[TableSpec, Sequence[list[Any]]]]
    ) -> dict[str, set[Key]]:
        """For each table's rows, the identities already stored: the recent ones of every
        table in one query of ``dedup_keys``, any older ones in their raw tables."""
        found: dict[str, set[Key]] = {spec.table: set() for spec, _rows in batches}
        recent: list[tuple[TableSpec, Sequence[list[Any]], datetime]] = []
        kept = await self._retention.kept()
        for spec, rows in batches:
            near, far = self._by_reach(spec, rows, kept)
            if far:
                found[spec.table] |= await self._look(spec, far)
            if near:
                recent.append((spec, *near))
        if recent:
            for table, keys in (await self._look_keys(recent)).items():
                found[table] |= keys
        return found

    def _by_reach(
        self, spec: TableSpec, rows: Sequence[list[Any]], kept: timedelta | None
    ) -> tuple[tuple[Sequence[list[Any]], datetime] | None, Sequence[list[Any]]]:
        """``rows`` parted into those ``dedup_keys`` answers for, with the oldest one's
        time, and those it may not; ``kept`` is the key table's period (None: forever)."""
        if not rows:
            return None, rows
        received_at = spec.received_at
        oldest = min(map(received_at, rows))
        if kept is None:  # the key table holds every key the raw tables hold
            return (rows, oldest), []
        if self._window is None:
            return None, rows
        horizon = self._now() - kept + KEYS_MARGIN + self._window
        if oldest >= horizon:  # the usual case: all recent
            return (rows, oldest), []
        near = [row for row in rows if received_at(row) >= horizon]
        far = [row for row in rows if received_at(row) < horizon]
        return ((near, min(map(received_at, near))) if near else None), far

    def _since_ms(self, oldest: datetime) -> int:
        """The lookup's lower bound, in milliseconds: ``window`` before ``oldest`` (none for
        an unbounded window)."""
        if self._window is None:
            return 0
        return int((oldest - self._window).timestamp() * 1000)

    async def _look(self, spec: TableSpec, rows: Sequence[list[Any]]) -> set[Key]:
        """The keys of ``rows`` that their raw table holds, in chunks of ``LOOKUP_CHUNK``."""
        key = spec.key
        keys = {key(row) for row in rows}
        sql = (
            f"SELECT project_id, prompt_id, dedup_key FROM {spec.table}"
            " WHERE (project_id, prompt_id, dedup_key) IN"
            f" (SELECT project_id, prompt_id, dedup_key FROM {LOOKUP_TABLE})"
        )
        parameters: dict[str, Any] = {}
        if self._window is not None:
            sql += " AND received_at >= fromUnixTimestamp64Milli({since:Int64})"
            parameters["since"] = self._since_ms(min(map(spec.received_at, rows)))
        found: set[Key] = set()
        ordered = sorted(keys, key=_by_key)
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            parameters[LOOKUP_TABLE] = Table(LOOKUP_STRUCTURE, _tsv([("", k) for k in chunk]))
            rows_found = await self._sink.rows(sql, parameters)
            found |= keys & {(row[0].int, row[1].int, row[2]) for row in rows_found}
        return found

    async def _look_keys(
        self, batches: Sequence[tuple[TableSpec, Sequence[list[Any]], datetime]]
    ) -> dict[str, set[Key]]:
        """The keys of each table's ``rows`` that ``dedup_keys`` holds: one query for all."""
        keys: dict[str, set[Key]] = {}
        bounds: list[str] = []
        parameters: dict[str, Any] = {}
        for n, (spec, rows, oldest) in enumerate(batches):
            key = spec.key
            keys[spec.table] = {key(row) for row in rows}
            parameters[f"since{n}"] = self._since_ms(oldest)
            bounds.append(
                f"source_table = '{spec.table}'"
                f" AND received_at >= fromUnixTimestamp64Milli({{since{n}:Int64}})"
            )
        # The sort key's order, so the primary index picks the granules of these keys only.
        sql = (
            f"SELECT source_table, project_id, prompt_id, dedup_key FROM {KEY_TABLE}"
            " WHERE (source_table, project_id, dedup_key, prompt_id) IN"
            f" (SELECT source_table, project_id, dedup_key, prompt_id FROM {LOOKUP_TABLE})"
            f" AND ({' OR '.join(f'({bound})' for bound in bounds)})"
        )
        ordered = [
            (f"{table}\t", identity)
            for table, identities in keys.items()
            for identity in sorted(identities, key=_by_key)
        ]
        found: dict[str, set[Key]] = {table: set() for table in keys}
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            parameters[LOOKUP_TABLE] = Table(KEY_LOOKUP_STRUCTURE, _tsv(chunk))
            for table, project, prompt, text in await self._sink.rows(sql, parameters):
                identity = (project.int, prompt.int, text)
                if identity in keys[table]:
                    found[table].add(identity)
        return found


def _tsv(chunk: Sequence[tuple[str, Key]]) -> bytes:
    """(prefix, identity) pairs as TabSeparated rows, each the prefix (a column of its own,
    with its tab, or nothing) and the identity. A batch's identities share a few projects and
    prompts: each line's start is spelled once per prefix, project and prompt."""
    starts: dict[tuple[str, int, int], str] = {}
    lines = []
    for prefix, (project, prompt, key) in chunk:
        start = starts.get((prefix, project, prompt))
        if start is None:
            start = f"{prefix}{_uuid_text(project)}\t{_uuid_text(prompt)}\t"
            starts[prefix, project, prompt] = start
        if _escaped(key) is not None:
            key = key.translate(_TSV_ESCAPES)
        lines.append(f"{start}{key}\n")
    return "".join(lines).encode()


def _uuid_text(value: int) -> str:
    """The hyphenated spelling of a UUID given as its 128-bit number."""
    return str(uuid.UUID(int=value))
