"""Which events of a batch are already stored: the guard against duplicates across batches.

A client that retries with the same idempotency key, a dead letter replayed twice, or a
record the producer sent twice sends the same event in records that land in different
batches, perhaps days apart; a deduplication token cannot see that. So before inserting,
the worker asks the raw table which identities of the batch it already holds (within the
lookback window) and drops them. This is free of races because one partition has one owner
at a time and records are keyed by prompt, so all copies of an event pass through the same
worker, in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from workers.sink import ClickHouseSink, Table
from workers.tables import Identity, TableSpec

LOOKUP_CHUNK = 10_000
"""Identities per lookup query: a whole batch at the default batch size."""
LOOKUP_TABLE = "lookup"
LOOKUP_STRUCTURE = "project_id UUID, prompt_id UUID, dedup_key String"
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
"""TabSeparated escaping of a key: any text may be a client's idempotency key."""


def first_copies(
    spec: TableSpec, rows: Sequence[list[Any]], stored: set[Identity], seen: set[Identity]
) -> list[int]:
    """The indexes of ``rows`` to insert: not ``stored``, and the first of their identity
    (first one wins); ``seen`` is updated with what is kept, across the blocks of a batch."""
    kept: list[int] = []
    for index, row in enumerate(rows):
        identity = spec.identity(row)
        if identity in stored or identity in seen:
            continue
        seen.add(identity)
        kept.append(index)
    return kept


class DuplicateFinder:
    """Looks identities up in the raw tables, ``window`` back from the batch's oldest event."""

    def __init__(self, sink: ClickHouseSink, window: timedelta | None) -> None:
        self._sink = sink
        self._window = window

    async def stored(self, spec: TableSpec, rows: Sequence[list[Any]]) -> set[Identity]:
        """The identities among ``rows`` that ``spec.table`` already holds."""
        if not rows:
            return set()
        identities = {spec.identity(row) for row in rows}
        since = self._since(spec.received_at(row) for row in rows)
        found: set[Identity] = set()
        ordered = sorted(identities, key=lambda identity: identity[2])
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            found |= identities & await self._lookup(spec.table, chunk, since)
        return found

    def _since(self, times: Iterable[datetime]) -> int | None:
        if self._window is None:
            return None
        return int((min(times) - self._window).timestamp() * 1000)

    async def _lookup(
        self, table: str, chunk: Sequence[Identity], since_ms: int | None
    ) -> set[Identity]:
        # The identities travel as an external table (data the server reads in bulk), not as
        # thousands of literals in the query text for its SQL parser to take one by one.
        sql = (
            f"SELECT project_id, prompt_id, dedup_key FROM {table}"
            " WHERE (project_id, prompt_id, dedup_key) IN"
            f" (SELECT project_id, prompt_id, dedup_key FROM {LOOKUP_TABLE})"
        )
        parameters: dict[str, Any] = {LOOKUP_TABLE: Table(LOOKUP_STRUCTURE, _tsv(chunk))}
        if since_ms is not None:
            sql += " AND received_at >= fromUnixTimestamp64Milli({since:Int64})"
            parameters["since"] = since_ms
        rows = await self._sink.rows(sql, parameters)
        return {(row[0], row[1], row[2]) for row in rows}


def _tsv(chunk: Sequence[Identity]) -> bytes:
    """The identities as TabSeparated rows (ids repeat: each is spelled once)."""
    spelled: dict[uuid.UUID, str] = {}
    lines = []
    for project, prompt, key in chunk:
        project_text = spelled.get(project) or spelled.setdefault(project, str(project))
        prompt_text = spelled.get(prompt) or spelled.setdefault(prompt, str(prompt))
        lines.append(f"{project_text}\t{prompt_text}\t{key.translate(_TSV_ESCAPES)}\n")
    return "".join(lines).encode()
