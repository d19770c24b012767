"""Reading records of a partition by offset, outside the consumer group.

Taking over a partition (``workers/recovery.py``) needs to know which records Kafka holds
at the committed offset: the first one tells the block its previous owner left uncommitted
from a block of an older topic of the same name that used the same offsets; and all of that
block's records, when ClickHouse holds only part of it. The group's own
consumer cannot serve that in the middle of a rebalance, so a second consumer, in no group
and committing nothing, is assigned the partitions it is asked about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from promptline.settings import Settings
from workers.batch import Record

READ_TIMEOUT_SECONDS = 30.0
"""How long a read may take before recovery gives up and reads the partition as usual."""


def create_reader_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer without a group, reading what the group's consumer reads."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )


class PartitionReader:
    """The first record at an offset of a partition, for many partitions at once."""

    def __init__(self, consumer: AIOKafkaConsumer, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self._consumer = consumer
        self._timeout = timeout
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._consumer.start()

    async def stop(self) -> None:
        """Close the connections."""
        await self._consumer.stop()

    async def heads(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, Record]:
        """The first record at or after each position; partitions with none are left out.

        Raises a KafkaError (KafkaTimeoutError when the records do not come in time).
        """
        if not positions:
            return {}
        async with self._lock:
            end = await self._consumer.end_offsets(list(positions))
            wanted = {tp: offset for tp, offset in positions.items() if offset < end[tp]}
            if not wanted:
                return {}
            self._consumer.assign(list(wanted))
            for tp, offset in wanted.items():
                self._consumer.seek(tp, offset)
            found: dict[TopicPartition, Record] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while len(found) < len(wanted):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    missing = sorted(set(wanted) - set(found))
                    raise KafkaTimeoutError(f"no record read from {missing} in {self._timeout}s")
                pending = [tp for tp in wanted if tp not in found]
                fetched = await self._consumer.getmany(
                    *pending, timeout_ms=max(1, int(min(remaining, 1.0) * 1000))
                )
                for tp, records in fetched.items():
                    if records and tp not in found:
                        found[tp] = records[0]
            return found

    async def read(self, tp: TopicPartition, first: int, last: int) -> list[Record]:
        """The records of ``tp`` at offsets ``first..last`` (fewer if the partition ends first).

        Raises a KafkaError (KafkaTimeoutError when the records do not come in time).
        """
        async with self._lock:
            end = (await self._consumer.end_offsets([tp]))[tp]
            stop = min(last + 1, end)
            self._consumer.assign([tp])
            self._consumer.seek(tp, first)
            records: list[Record] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while await self._consumer.position(tp) < stop:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise KafkaTimeoutError(f"{tp} {first}-{last} not read in {self._timeout}s")
                fetched = await self._consumer.getmany(
                    tp, timeout_ms=max(1, int(min(remaining, 1.0) * 1000))
                )
                records.extend(r for r in fetched.get(tp, []) if first <= r.offset <= last)
            return records
