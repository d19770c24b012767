"""EventProducer over a stand-in for aiokafka: send all first, await all together, no loss."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from aiokafka.partitioner import DefaultPartitioner

from ingest.producer import EventProducer, Outgoing, ProduceFailed
from ingest.resources import edge_producer
from promptline.settings import Settings


class StubKafka:
    """Records sends; each delivery is settled by the test, like a broker would."""

    def __init__(self, fail_send: set[bytes] | None = None, expect: int = 0) -> None:
        self.expect = expect
        self.all_sent = asyncio.Event()
        self.sent: list[bytes] = []
        self.partitions: list[int] = []
        self.deliveries: dict[bytes, asyncio.Future[Any]] = {}
        self.fail_send = fail_send or set()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send(
        self, topic: str, value: bytes, key: bytes, partition: int
    ) -> asyncio.Future[Any]:
        self.partitions.append(partition)
        if value in self.fail_send:
            raise KafkaTimeoutError()
        self.sent.append(value)
        if len(self.sent) >= self.expect:
            self.all_sent.set()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries[value] = future
        return future


def _records(*values: bytes) -> list[Outgoing]:
    return [Outgoing("t", b"k", value) for value in values]


async def test_all_records_are_sent_before_any_acknowledgement_is_awaited() -> None:
    kafka = StubKafka(expect=3)
    producer = EventProducer(kafka, ack_timeout=5)
    task = asyncio.create_task(producer.produce_many(_records(b"a", b"b", b"c")))
    await kafka.all_sent.wait()
    assert not task.done()  # every record was handed over while none is acknowledged yet
    kafka.deliveries[b"b"].set_exception(NotLeaderForPartitionError())
    kafka.deliveries[b"a"].set_result(None)
    kafka.deliveries[b"c"].set_result(None)
    outcomes = await task
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ProduceFailed)


async def test_unacknowledged_records_fail_at_the_deadline_and_late_errors_are_quiet() -> None:
    kafka = StubKafka(fail_send={b"y"}, expect=2)
    producer = EventProducer(kafka, ack_timeout=0.05)
    task = asyncio.create_task(producer.produce_many(_records(b"x", b"y", b"z")))
    await kafka.all_sent.wait()
    kafka.deliveries[b"z"].set_result(None)
    outcomes = await task
    assert [type(outcome) for outcome in outcomes] == [ProduceFailed, ProduceFailed, type(None)]
    kafka.deliveries[b"x"].set_exception(KafkaTimeoutError())  # late: retrieved, not logged
    await asyncio.sleep(0)


async def test_single_produce_raises_produce_failed() -> None:
    kafka = StubKafka(fail_send={b"v"})
    producer = EventProducer(kafka, ack_timeout=1)
    with pytest.raises(ProduceFailed) as caught:
        await producer.produce("t", b"k", b"v")
    assert isinstance(caught.value.__cause__, KafkaTimeoutError)


async def test_keys_go_to_the_partition_aiokafka_would_choose() -> None:
    kafka = StubKafka()
    producer = EventProducer(kafka, ack_timeout=0.01)
    keys = [str(uuid.uuid4()).encode() for _ in range(20)]
    records = [Outgoing("t", key, key + bytes([n])) for key in keys for n in range(3)]
    await producer.produce_many(records)
    expected = [DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2]) for key in keys for _ in range(3)]
    assert kafka.partitions == expected


async def test_the_edge_waits_its_own_ack_timeout_not_the_kafka_request_timeout() -> None:
    """A slow broker gets the client a 503 after ``edge_ack_timeout_seconds`` (5 s default)."""
    assert Settings().edge_ack_timeout_seconds < Settings().kafka_request_timeout_ms / 1000
    producer = edge_producer(
        Settings(edge_ack_timeout_seconds=2.5, kafka_request_timeout_ms=30_000)
    )
    try:
        assert producer.ack_timeout == 2.5
    finally:
        await producer.stop()
