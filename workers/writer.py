"""Writing one block to ClickHouse: one insert per month it holds, each stored whole or not at all.

The raw tables are partitioned by month of ``received_at``, and ClickHouse writes an insert
spanning partitions as one part per partition, each on its own: a failure, or a worker that
dies, can leave some of them stored and the rest not. An insert into one partition is one
part, and so is each view's share of it. So a block is written as one insert per month it
holds (almost always one), each with a token derived from the block's name and the month,
and every row records how many rows the whole block held: whoever recovers the block can
tell a block stored whole from one stored in part (``workers/recovery.py``). A month that
ClickHouse refuses for its data is reported, not retried, for its records to be
dead-lettered (``workers/sink.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workers.batch import BlockId
from workers.sink import ClickHouseSink, Refused
from workers.tables import TableSpec


def by_month(spec: TableSpec, rows: Sequence[list[Any]]) -> dict[int, list[int]]:
    """The indexes of ``rows`` by the month (YYYYMM) of the raw table partition they go to."""
    months: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        months.setdefault(spec.month(row), []).append(index)
    return dict(sorted(months.items()))


@dataclass(frozen=True, slots=True)
class Refusal:
    """A month of a block ClickHouse refused: the indexes of its rows, and why."""

    rows: list[int]
    reason: str


class BlockWriter:
    """Inserts a block's rows a month at a time, with the block's lineage on every row."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self._sink = sink

    async def write(
        self, spec: TableSpec, block: BlockId, rows: Sequence[list[Any]], total: int
    ) -> list[Refusal]:
        """Insert ``rows`` (a record's columns each) of ``block``, which holds ``total`` rows
        in all; the months are written in order, each retried until ClickHouse has it.

        Returns the months ClickHouse refused for their data (``workers.sink.Refused``), for
        the caller to dead-letter; the other months are stored.
        """
        lineage = (block.first, block.last, block.marker, total)
        refused: list[Refusal] = []
        for month, indexes in by_month(spec, rows).items():
            part = [[*rows[index], *lineage] for index in indexes]
            try:
                await self._sink.write(spec.table, spec.insert_columns, part, block.token(month))
            except Refused as error:
                refused.append(Refusal(indexes, error.reason))
        return refused
