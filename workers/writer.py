"""Writing one block to ClickHouse: inserts of one month each, stored whole or not at all, and
the records ClickHouse refuses found by splitting.

The raw tables are partitioned by month of ``received_at``, and ClickHouse writes an insert
spanning partitions as one part per partition, each on its own: a failure, or a worker that
dies, can leave some of them stored and the rest not. An insert into one partition is one
part, and so is each view's share of it. So a block is written as one insert per month it
holds (almost always one), and every row records the block's name, how many rows the whole
block held and which insert (*piece*) stored it: whoever recovers the block can tell a block
stored whole from one stored in part, and insert each piece again with its own token
(``workers/recovery.py``).

An insert ClickHouse refuses, whatever the error, is about some of its records or about the
warehouse. Its records are split in halves, and each half inserted on its own, until the
records at fault are alone; those are returned to be dead-lettered, and the rest is stored.
ClickHouse stores an insert into a table and its views one after another, not atomically:
when a view refuses the insert, the raw part is already stored. So before splitting, what the
refused insert stored in the raw table is deleted, and the halves go in as new pieces with
tokens never used before (a token of deleted rows would make the raw table drop the rows
while the view, which never had them, counts them). Every insert therefore has a fresh random
piece number; its retries (for want of ClickHouse) keep it.

If no record can be stored, not one on its own, the fault is not in the data: a schema bug,
a dropped table, a broken view. Then nothing is dead-lettered: the month is tried again with
backoff, the worker reports itself stuck, until ClickHouse takes it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.aggregates import HOURLY
from workers.batch import BlockId
from workers.dedup import KEY_COLUMNS, KEY_TABLE
from workers.progress import Hold, Progress
from workers.sink import MAX_BACKOFF_SECONDS, ClickHouseSink, Refused
from workers.tables import TableSpec

log = logging.getLogger(__name__)

PIECES_BEFORE_STUCK = 16
"""Pieces of one level of splitting that may all fail, with nothing stored yet, before the
month is taken for a fault of the warehouse: more records at fault than this, and all in
one block, is not bad data but a broken table or view (and trying every record alone would
cost two inserts a record)."""


def by_month(spec: TableSpec, rows: Sequence[list[Any]]) -> dict[int, list[int]]:
    """The indexes of ``rows`` by the month (YYYYMM) of the raw table partition they go to."""
    months: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        months.setdefault(spec.month(row), []).append(index)
    return dict(sorted(months.items()))


def new_piece() -> int:
    """A piece number never used before: 63 random bits, never 0 (the number of inserts made
    before pieces were recorded, whose token is the block's and month's alone)."""
    return secrets.randbits(63) | 1


@dataclass(frozen=True, slots=True)
class Refusal:
    """Rows of a block ClickHouse refused one by one: their indexes, and why."""

    rows: list[int]
    reason: str


@dataclass(slots=True)
class _Month:
    """What became of the rows of one month: stored, or refused each on its own."""

    stored: int = 0
    refused: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Rows:
    """The rows being written and what every insert of them records: the block's name and
    how many rows it held in all."""

    spec: TableSpec
    block: BlockId
    total: int
    rows: Sequence[list[Any]]


class _Stuck(Exception):
    """No record of the month could be stored, not even on its own."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockWriter:
    """Inserts a block's rows a month at a time, with the block's lineage on every row."""

    def __init__(self, sink: ClickHouseSink, progress: Progress | None = None) -> None:
        self._sink = sink
        self._progress = progress or Progress()

    async def write(
        self, spec: TableSpec, block: BlockId, rows: Sequence[list[Any]], total: int
    ) -> list[Refusal]:
        """Insert ``rows`` (a record's columns each) of ``block``, which holds ``total`` rows
        in all; the months are written in order, each until ClickHouse has what it takes.

        Returns the rows ClickHouse refused, each on its own, for the caller to dead-letter;
        every other row is stored. Raises ``workers.sink.Interrupted`` if the worker stops
        while waiting to try again.
        """
        inserts = [(indexes, None) for indexes in by_month(spec, rows).values()]
        return await self._inserts(_Rows(spec, block, total, rows), inserts)

    async def rewrite(
        self,
        spec: TableSpec,
        block: BlockId,
        rows: Sequence[list[Any]],
        pieces: Sequence[int],
        total: int,
    ) -> list[Refusal]:
        """Insert again the stored rows of ``block``, each with the piece that stored it, so
        every view that missed a piece gets it and the raw table adds nothing; a piece
        refused again is undone and split like a new insert (:meth:`write`)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault((spec.month(row), pieces[index]), []).append(index)
        inserts = [(indexes, piece) for (_month, piece), indexes in sorted(groups.items())]
        refused = await self._inserts(_Rows(spec, block, total, rows), inserts)
        if rows:
            await self._restore_keys(spec, block)
        return refused

    async def _restore_keys(self, spec: TableSpec, block: BlockId) -> None:
        """Insert again the keys of the block's rows the raw table holds now.

        A worker that died while undoing a refused piece (its keys deleted, its rows not
        yet) left rows without keys, and the re-insert above is dropped by the key view's
        token: without this, a much later copy of those events would be stored again. A
        key twice is harmless; this runs only for a recovered block.
        """
        await self._sink.command(
            f"INSERT INTO {KEY_TABLE} SETTINGS insert_deduplicate = 0"
            f" SELECT '{spec.table}', {KEY_COLUMNS} FROM {spec.table}"
            " WHERE kafka_partition = %(partition)s AND kafka_block_first = %(first)s"
            " AND kafka_block_last = %(last)s AND kafka_block_marker = %(marker)s"
            " AND kafka_offset >= %(first)s",
            {
                "partition": block.tp.partition,
                "first": block.first,
                "last": block.last,
                "marker": block.marker,
            },
        )

    async def _inserts(
        self, rows: _Rows, inserts: Sequence[tuple[list[int], int | None]]
    ) -> list[Refusal]:
        """Store each group of row indexes (one month's), as its piece if given, in order."""
        refused: list[Refusal] = []
        for indexes, piece in inserts:
            refused.extend(_refusals(await self._month(rows, indexes, piece)))
        return refused

    async def _month(self, rows: _Rows, indexes: list[int], piece: int | None) -> _Month:
        """Store the rows at ``indexes`` (all of one month), as ``piece`` first if given;
        while ClickHouse takes none of them, wait and try again (module docstring)."""
        backoff: float | None = None
        while True:
            try:
                return await self._split(rows, indexes, piece)
            except _Stuck as stuck:
                backoff = self._sink.first_backoff if backoff is None else backoff
                log.error(
                    "%s: ClickHouse refuses every record of block %s, each alone too; the fault"
                    " is in the warehouse, retrying in %.1fs: %s",
                    rows.spec.table,
                    rows.block,
                    backoff,
                    stuck.reason,
                )
                self._progress.wait(Hold.STUCK, stuck.reason)
                await self._sink.pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                piece = None  # the piece was undone: its token is never used again

    async def _split(self, rows: _Rows, indexes: list[int], piece: int | None) -> _Month:
        """Insert, and split what is refused, a level of halves at a time, until the refused
        records are alone; raises :class:`_Stuck` if the warehouse is at fault."""
        outcome = _Month()
        level = [(indexes, new_piece() if piece is None else piece)]
        while level:
            failed: list[tuple[list[int], Refused]] = []
            for group, number in level:
                try:
                    await self._insert(rows, group, number)
                    outcome.stored += len(group)
                except Refused as error:
                    if await self._undo(rows, group, number):
                        outcome.stored += len(group)
                        continue
                    if error.about_the_schema:
                        raise _Stuck(error.reason) from error
                    failed.append((group, error))
            if not failed:
                break
            alone = all(len(group) == 1 for group, _refusal in failed)
            if outcome.stored == 0 and (alone or len(level) >= PIECES_BEFORE_STUCK):
                raise _Stuck(failed[0][1].reason)
            level = []
            for group, refusal in failed:
                if len(group) == 1:
                    outcome.refused[group[0]] = refusal.reason
                    continue
                middle = len(group) // 2
                level.append((group[:middle], new_piece()))
                level.append((group[middle:], new_piece()))
        return outcome

    async def _insert(self, rows: _Rows, group: list[int], piece: int) -> None:
        spec, block = rows.spec, rows.block
        lineage = (block.first, block.last, block.marker, rows.total, piece)
        part = [[*rows.rows[index], *lineage] for index in group]
        month = spec.month(rows.rows[group[0]])
        await self._sink.write(spec.table, spec.insert_columns, part, block.token(month, piece))

    async def _undo(self, rows: _Rows, group: list[int], piece: int) -> bool:
        """Settle what a refused insert stored in the raw table, if anything: a view refused
        it after the raw part was written. If our hourly aggregate counted it before (the
        view that refused is one added after ours), the rows stay, stored in the raw table
        and every aggregate of ours: returns True. Otherwise they are deleted, so that their
        records are stored only by later pieces."""
        spec, block = rows.spec, rows.block
        offsets = [spec.offset(rows.rows[index]) for index in group]
        where = (
            "kafka_partition = %(partition)s AND kafka_offset BETWEEN %(low)s AND %(high)s"
            " AND kafka_block_first = %(first)s AND kafka_block_marker = %(marker)s"
            " AND kafka_piece = %(piece)s"
        )
        parameters = {
            "partition": block.tp.partition,
            "low": min(offsets),
            "high": max(offsets),
            "first": block.first,
            "marker": block.marker,
            "piece": piece,
        }
        stored = await self._sink.rows(
            f"SELECT count() FROM {spec.table} WHERE {where}", parameters
        )
        if not stored or not int(stored[0][0]):
            return False
        aggregate = HOURLY.get(spec.table)
        if aggregate is not None and await aggregate.counted_rows(
            self._sink, spec.table, where, parameters
        ):
            log.error(
                "%s: a view refused piece %d of block %s after the table and %s had it: kept"
                " as stored; a view of yours that refuses rows misses them",
                spec.table,
                piece,
                block,
                aggregate.hourly,
            )
            self._progress.insert_failed("kept_after_view_refused")
            # Our key view may have come after the one that refused: the rows stay, so must
            # their keys (one twice is harmless).
            await self._sink.command(
                f"INSERT INTO {KEY_TABLE} SETTINGS insert_deduplicate = 0"
                f" SELECT '{spec.table}', {KEY_COLUMNS} FROM {spec.table} WHERE {where}",
                parameters,
            )
            return True
        log.warning(
            "%s: a view refused piece %d of block %s after the table stored %d rows;"
            " deleting them before splitting",
            spec.table,
            piece,
            block,
            int(stored[0][0]),
        )
        # The keys first: a key left without its row would make a later copy of the record,
        # or the recovery of this block, take it for stored; a row left without its key is
        # at worst an event a much later copy could repeat.
        await self._sink.command(
            f"DELETE FROM {KEY_TABLE} WHERE source_table = '{spec.table}' AND {where}", parameters
        )
        await self._sink.command(f"DELETE FROM {spec.table} WHERE {where}", parameters)
        return False


def _refusals(outcome: _Month) -> list[Refusal]:
    """The refused rows of a month, grouped by reason."""
    by_reason: dict[str, list[int]] = {}
    for index, reason in sorted(outcome.refused.items()):
        by_reason.setdefault(reason, []).append(index)
    return [Refusal(indexes, reason) for reason, indexes in by_reason.items()]
