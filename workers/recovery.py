"""Taking over a partition: finishing the block its previous owner inserted but never committed.

A worker inserts a partition's block, then commits the offset after it. If it dies (or
loses the partition) in between, ClickHouse has the block and Kafka does not know. The
block's rows name their block's offset range, so the next owner finds it: the rows at or
after the committed offset, all of one block. It inserts exactly those rows again, with the
block's token: a no-op for the raw table and for every view that already has the block, and
the missing part for a view whose insert had failed. Then it commits past the block, and
the records of that range (rows, duplicates, dead letters) are never read again.

Anything else found past the committed offset (several blocks: offsets were rewound by
hand) is left to the duplicate lookup, which drops what is already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from workers.batch import block_token
from workers.sink import ClickHouseSink
from workers.tables import TableSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovered:
    """An uncommitted block found in ClickHouse and inserted again."""

    tp: TopicPartition
    first: int
    last: int
    rows: int

    @property
    def next_offset(self) -> int:
        """Where consumption of the partition resumes."""
        return self.last + 1


class BlockRecovery:
    """Finds and re-inserts the uncommitted block of each partition a worker is given."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self._sink = sink

    async def recover(
        self, spec: TableSpec, committed: Mapping[TopicPartition, int]
    ) -> list[Recovered]:
        """Re-insert each partition's uncommitted block; ``committed`` maps partition to offset."""
        if not committed:
            return []
        by_partition = {tp.partition: (tp, offset) for tp, offset in committed.items()}
        blocks = await self._sink.rows(
            f"SELECT kafka_partition, kafka_block_first, kafka_block_last, count()"
            f" FROM {spec.table}"
            " WHERE kafka_partition IN %(partitions)s AND kafka_offset >= %(lowest)s"
            " GROUP BY kafka_partition, kafka_block_first, kafka_block_last",
            {
                "partitions": tuple(by_partition),
                "lowest": min(committed.values()),
            },
        )
        found: dict[int, list[tuple[int, int]]] = {}
        for partition, first, last, _count in blocks:
            _tp, offset = by_partition[int(partition)]
            if int(last) >= offset:
                found.setdefault(int(partition), []).append((int(first), int(last)))
        recovered: list[Recovered] = []
        for partition, ranges in sorted(found.items()):
            tp, offset = by_partition[partition]
            if len(ranges) != 1 or ranges[0][0] < offset:
                log.warning(
                    "%s[%d]: %d stored block(s) past committed offset %d; offsets were rewound,"
                    " so the duplicate lookup, not recovery, keeps them single",
                    tp.topic,
                    partition,
                    len(ranges),
                    offset,
                )
                continue
            first, last = ranges[0]
            rows = await self._block_rows(spec, partition, first, last)
            await self._sink.write(
                spec.table, spec.insert_columns, rows, block_token(tp, first, last)
            )
            log.info(
                "%s[%d]: re-inserted uncommitted block %d-%d (%d rows)",
                tp.topic,
                partition,
                first,
                last,
                len(rows),
            )
            recovered.append(Recovered(tp, first, last, len(rows)))
        return recovered

    async def _block_rows(
        self, spec: TableSpec, partition: int, first: int, last: int
    ) -> list[list[Any]]:
        columns = ", ".join(spec.insert_columns)
        rows = await self._sink.rows(
            f"SELECT {columns} FROM {spec.table}"
            " WHERE kafka_partition = %(partition)s AND kafka_block_first = %(first)s"
            " AND kafka_block_last = %(last)s AND kafka_offset >= %(first)s"
            " ORDER BY kafka_offset",
            {"partition": partition, "first": first, "last": last},
        )
        return [list(row) for row in rows]
