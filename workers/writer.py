"""Writing one block to ClickHouse: one insert per month it holds, each stored whole or not at all.

The raw tables are partitioned by month of ``received_at``, and ClickHouse writes an insert
spanning partitions as one part per partition, each on its own: a failure, or a worker that
dies, can leave some of them stored and the rest not. An insert into one partition is one
part, and so is each view's share of it. So a block is written as one insert per month it
holds (almost always one), each with a token derived from the block's name and the month,
and every row records how many rows the whole block held: whoever recovers the block can
tell a block stored whole from one stored in part (``workers/recovery.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.batch import BlockId
from workers.sink import ClickHouseSink
from workers.tables import TableSpec


def by_month(spec: TableSpec, rows: Sequence[list[Any]]) -> dict[int, list[list[Any]]]:
    """``rows`` by the month (YYYYMM) of the raw table partition they go to, in order."""
    months: dict[int, list[list[Any]]] = {}
    for row in rows:
        months.setdefault(spec.month(row), []).append(row)
    return dict(sorted(months.items()))


class BlockWriter:
    """Inserts a block's rows a month at a time, with the block's lineage on every row."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self._sink = sink

    async def write(
        self, spec: TableSpec, block: BlockId, rows: Sequence[list[Any]], total: int
    ) -> None:
        """Insert ``rows`` (a record's columns each) of ``block``, which holds ``total`` rows
        in all; the months are written in order, each retried until ClickHouse has it."""
        lineage = (block.first, block.last, block.marker, total)
        for month, part in by_month(spec, rows).items():
            await self._sink.write(
                spec.table,
                spec.insert_columns,
                [[*row, *lineage] for row in part],
                block.token(month),
            )
