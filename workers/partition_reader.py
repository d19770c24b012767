"""Reading records of a partition by offset, outside the consumer group.

Taking over a partition (``workers/recovery.py``) needs to know which records Kafka holds
at the committed offset: the first one tells the block its previous owner left uncommitted
from a block of an older topic of the same name that used the same offsets; and all of that
block's records, when ClickHouse holds only part of it. The group's own consumer cannot
serve that in the middle of a rebalance, so a second consumer, in no group and committing
nothing, is assigned the partitions it is asked about.

End offsets are taken as a hint only: the local broker reports the start of its last batch
plus one, not the offset after its last record, so a record past a reported end may exist.
Where the end says there is one, the reader waits for it as long as it takes (up to
``timeout``); where it says there is none, only briefly (``probe``).
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
PROBE_SECONDS = 2.0
"""How long to look for a record past an end offset that says there is none."""
POLL_MS = 500


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
    """The records of a partition from an offset on, for many partitions at once."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        timeout: float = READ_TIMEOUT_SECONDS,
        probe: float = PROBE_SECONDS,
    ) -> None:
        self._consumer = consumer
        self._timeout = timeout
        self._probe = probe
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._consumer.start()

    async def stop(self) -> None:
        """Close the connections."""
        await self._consumer.stop()

    async def end_offsets(
        self, partitions: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """What the broker reports as each partition's end (a hint: module docstring)."""
        if not partitions:
            return {}
        async with self._lock:
            ends: dict[TopicPartition, int] = await self._consumer.end_offsets(list(partitions))
            return ends

    async def heads(
        self, positions: Mapping[TopicPartition, int], probe: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, Record]:
        """The first record at or after each position; partitions with none are left out.

        ``positions`` are partitions known to hold a record there, waited for up to the
        timeout (then KafkaTimeoutError); ``probe`` ones may hold none, and are waited for
        only briefly.
        """
        wanted = {**probe, **positions}
        if not wanted:
            return {}
        async with self._lock:
            self._consumer.assign(list(wanted))
            for tp, offset in wanted.items():
                self._consumer.seek(tp, offset)
            found: dict[TopicPartition, Record] = {}
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                waited = loop.time() - started
                pending = [tp for tp in wanted if tp not in found]
                if waited >= self._probe:
                    pending = [tp for tp in pending if tp in positions]
                if not pending:
                    return found
                if waited >= self._timeout:
                    raise KafkaTimeoutError(f"no record read from {pending} in {self._timeout}s")
                fetched = await self._consumer.getmany(*pending, timeout_ms=POLL_MS)
                for tp, records in fetched.items():
                    if records and tp not in found:
                        found[tp] = records[0]

    async def read(self, tp: TopicPartition, first: int, last: int) -> list[Record]:
        """The records of ``tp`` at offsets ``first..last``, which a block was made of.

        Raises a KafkaError (KafkaTimeoutError when they do not all come in time).
        """
        async with self._lock:
            self._consumer.assign([tp])
            self._consumer.seek(tp, first)
            records: list[Record] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while not records or records[-1].offset < last:
                if loop.time() >= deadline:
                    raise KafkaTimeoutError(f"{tp} {first}-{last} not read in {self._timeout}s")
                fetched = await self._consumer.getmany(tp, timeout_ms=POLL_MS)
                records.extend(r for r in fetched.get(tp, []) if first <= r.offset <= last)
            return records
