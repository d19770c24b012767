"""Taking over a partition: finishing the block its previous owner inserted but never committed.

A worker inserts a partition's block, a month at a time, then commits the offset after it.
If it dies (or loses the partition) in between, ClickHouse has the block, or some months of
it, and Kafka does not know. The uncommitted block starts at the committed offset, and its
rows name it (``BlockId``: offsets and a fingerprint of the first record), so the next owner
reads the record Kafka holds at the committed offset and looks for rows of a block that
starts with exactly that record. It inserts those rows again, with the block's tokens: a
no-op for the raw table and for every view that already has them, and the missing part for
a view whose insert had failed. If they are fewer than the block held (every row records the
block's count), a month never reached ClickHouse: it reads the block's records from Kafka
again and inserts that month's rows as the first insert chose them. Then it commits past
the block, and the records of that range (rows, duplicates, dead letters) are never read
again.

Rows past the committed offset that belong to no such block are left alone: rows of an
older topic of the same name (recreated, so its offsets started again at 0), or blocks
already committed once (offsets rewound by hand), which the duplicate lookup keeps single.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from workers.batch import BlockId, Record, record_marker
from workers.dead_letters import DeadLetters, refused_reason
from workers.decode import Poison, decode
from workers.dedup import DuplicateFinder, first_copies
from workers.partition_reader import PartitionReader
from workers.progress import Progress
from workers.sink import ClickHouseSink
from workers.tables import Lineage, TableSpec
from workers.writer import BlockWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovered:
    """An uncommitted block found in ClickHouse and inserted again."""

    block: BlockId
    rows: int

    @property
    def tp(self) -> TopicPartition:
        """The partition the block came from."""
        return self.block.tp

    @property
    def next_offset(self) -> int:
        """Where consumption of the partition resumes."""
        return self.block.next_offset


class BlockRecovery:
    """Finds and re-inserts the uncommitted block of each partition a worker is given."""

    def __init__(
        self,
        sink: ClickHouseSink,
        reader: PartitionReader,
        duplicates: DuplicateFinder,
        dead_letters: DeadLetters,
        progress: Progress | None = None,
    ) -> None:
        self._sink = sink
        self._reader = reader
        self._duplicates = duplicates
        self._dead_letters = dead_letters
        self._writer = BlockWriter(sink, progress)

    async def recover(
        self, spec: TableSpec, committed: Mapping[TopicPartition, int]
    ) -> list[Recovered]:
        """Re-insert each partition's uncommitted block; ``committed`` maps partition to offset."""
        if not committed:
            return []
        ends = await self._reader.end_offsets(committed)
        beyond = {tp: offset for tp, offset in committed.items() if ends.get(tp, 0) > offset}
        # The end is a hint (``workers/partition_reader.py``): where it says Kafka holds
        # nothing past the committed offset, look for records only if ClickHouse has rows there.
        unsure = {tp: offset for tp, offset in committed.items() if tp not in beyond}
        probe = await self._with_rows_past(spec, unsure)
        heads = await self._reader.heads(beyond, probe)
        if not heads:
            return []
        expected = {
            tp.partition: (tp, record.offset, record_marker(record)) for tp, record in heads.items()
        }
        where, parameters = _each_partition(
            "kafka_partition = %({n}p)s AND kafka_block_first = %({n}o)s"
            " AND kafka_block_marker = %({n}m)s AND kafka_offset >= %({n}o)s",
            [
                {"p": partition, "o": first, "m": marker}
                for partition, (_tp, first, marker) in expected.items()
            ],
        )
        stored = await self._sink.rows(
            f"SELECT kafka_partition, kafka_block_first, kafka_block_last, kafka_block_marker,"
            f" max(kafka_block_rows) FROM {spec.table} WHERE {where}"
            " GROUP BY kafka_partition, kafka_block_first, kafka_block_last, kafka_block_marker",
            parameters,
        )
        found: dict[int, list[tuple[BlockId, int]]] = {}
        for partition, first, last, marker, total in stored:
            tp, head, head_marker = expected[int(partition)]
            if (int(first), int(marker)) == (head, head_marker):
                found.setdefault(int(partition), []).append(
                    (BlockId(tp, head, int(last), head_marker), int(total))
                )
        recovered: list[Recovered] = []
        for partition, blocks in sorted(found.items()):
            if len(blocks) != 1:
                log.warning(
                    "%s[%d]: %d stored blocks start with the record at %d; leaving them to the"
                    " duplicate lookup",
                    blocks[0][0].tp.topic,
                    partition,
                    len(blocks),
                    blocks[0][0].first,
                )
                continue
            recovered.append(await self._recover_block(spec, *blocks[0]))
        return recovered

    async def _with_rows_past(
        self, spec: TableSpec, committed: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Those of ``committed`` whose table has rows at or past the committed offset."""
        if not committed:
            return {}
        by_partition = {tp.partition: (tp, offset) for tp, offset in committed.items()}
        where, parameters = _each_partition(
            "kafka_partition = %({n}p)s AND kafka_offset >= %({n}o)s",
            [{"p": tp.partition, "o": offset} for tp, offset in committed.items()],
        )
        rows = await self._sink.rows(
            f"SELECT DISTINCT kafka_partition FROM {spec.table} WHERE {where}", parameters
        )
        return dict(by_partition[int(partition)] for (partition,) in rows)

    async def _recover_block(self, spec: TableSpec, block: BlockId, total: int) -> Recovered:
        rows, pieces = await self._block_rows(spec, block)
        refused = await self._writer.rewrite(spec, block, rows, pieces, total)
        stored = len(rows) - sum(len(refusal.rows) for refusal in refused)
        missing: list[list[Any]] = []
        if stored < total:
            # Some of the block never reached ClickHouse (a month, a piece, a refused record,
            # or a piece refused again just now and undone): read the block again and store
            # what is not stored; what is refused again is dead-lettered here.
            read = await self._reader.read(block.tp, block.first, block.last)
            missing, records = await self._missing_rows(spec, read)
            for refusal in await self._writer.write(spec, block, missing, total):
                for index in refusal.rows:
                    await self._dead_letters.park(records[index], refused_reason(refusal.reason))
        await self._dead_letters.delivered()
        log.info(
            "%s[%d]: re-inserted uncommitted block %d-%d (%d rows found, %d read again)",
            block.tp.topic,
            block.tp.partition,
            block.first,
            block.last,
            len(rows),
            len(missing),
        )
        return Recovered(block, stored + len(missing))

    async def _block_rows(
        self, spec: TableSpec, block: BlockId
    ) -> tuple[list[list[Any]], list[int]]:
        """The stored rows of ``block`` and the piece that stored each."""
        columns = ", ".join(spec.columns)
        found = await self._sink.rows(
            f"SELECT {columns}, kafka_piece FROM {spec.table}"
            " WHERE kafka_partition = %(partition)s AND kafka_block_first = %(first)s"
            " AND kafka_block_last = %(last)s AND kafka_block_marker = %(marker)s"
            " AND kafka_offset >= %(first)s"
            " ORDER BY kafka_offset",
            {
                "partition": block.tp.partition,
                "first": block.first,
                "last": block.last,
                "marker": block.marker,
            },
        )
        return [list(row[:-1]) for row in found], [int(row[-1]) for row in found]

    async def _missing_rows(
        self, spec: TableSpec, read: Sequence[Record]
    ) -> tuple[list[list[Any]], list[Record]]:
        """The block's rows not stored, as its first insert chose them.

        That insert kept the first copy of each event not stored before it; stored now are
        those it stored, so the same choice over what is stored now leaves the rows it meant
        to store and could not (a month or piece never inserted, a record refused). Records
        that did not decode were dead-lettered when the block was first read. ``read`` is the
        block's records, read again from Kafka; returns the rows and the records they came
        from.
        """
        rows: list[list[Any]] = []
        records: list[Record] = []
        for record in read:
            row = decode(spec, record.value, Lineage(record.partition, record.offset))
            if not isinstance(row, Poison):
                rows.append(row)
                records.append(record)
        stored = await self._duplicates.stored_keys(spec, rows)
        kept = first_copies(spec, rows, stored, set())
        return [rows[index] for index in kept], [records[index] for index in kept]


def _each_partition(condition: str, values: list[dict[str, int]]) -> tuple[str, dict[str, int]]:
    """``condition`` for each partition's values, OR-ed: each partition is bounded by its
    own offsets, so the offset index skips what lies before each (one shared lower bound
    would read a busy partition from a quiet one's offset)."""
    parts: list[str] = []
    parameters: dict[str, int] = {}
    for n, named in enumerate(values):
        parts.append(f"({condition.format(n=f'x{n}')})")
        parameters.update({f"x{n}{name}": value for name, value in named.items()})
    return " OR ".join(parts), parameters
