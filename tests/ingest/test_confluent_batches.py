"""A librdkafka batch (resolve's exposures) is reported once, when Kafka has all of it.

Its records share one delivery callback that counts them down in the poll thread, instead
of a future and a loop callback per record; these tests hold that the one future still
says what every record's would have: done once the last is acknowledged, failed at the
first failure, and silent for a batch given up before all of it was queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaError
from confluent_kafka import KafkaError as ConfluentError

from ingest.confluent_producer import ConfluentBatch, ConfluentKafka, _BatchReport
from promptline.kafka import confluent_config
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.ingest.kafka_reader import read_topic


def _reported(client: ConfluentKafka) -> list[tuple[asyncio.Future[Any], Any]]:
    """What the poll thread would hand the loop next (the client's collected reports)."""
    return client._reports


async def _batch_of(client: ConfluentKafka, count: int) -> tuple[asyncio.Future[Any], _BatchReport]:
    """A batch's future and its shared callback, as :meth:`send_batch` makes them."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    return done, _BatchReport(client, done, count)


async def test_a_batch_is_reported_once_when_its_last_record_is_acknowledged() -> None:
    client = ConfluentKafka({}, connect_timeout=1)
    done, report = await _batch_of(client, 3)
    report(None, None)
    report(None, None)
    assert _reported(client) == []
    report(None, None)
    assert _reported(client) == [(done, None)]
    client._hand_over()
    assert done.result() is None


async def test_the_first_failure_fails_the_batch_and_later_reports_are_dropped() -> None:
    client = ConfluentKafka({}, connect_timeout=1)
    done, report = await _batch_of(client, 3)
    failure = ConfluentError(ConfluentError._MSG_TIMED_OUT)
    report(None, None)
    report(failure, None)
    report(None, None)
    report(ConfluentError(ConfluentError._MSG_TIMED_OUT), None)
    assert _reported(client) == [(done, failure)]
    client._hand_over()
    with pytest.raises(KafkaError):
        done.result()


async def test_a_batch_given_up_before_it_was_queued_reports_nothing() -> None:
    client = ConfluentKafka({}, connect_timeout=1)
    done, report = await _batch_of(client, 2)
    report.abandon()
    report(None, None)
    report(None, None)
    assert _reported(client) == []
    assert not done.done()


@pytest.mark.kafka
async def test_a_batch_sent_through_librdkafka_arrives_whole_before_its_future_is_done(
    migrated: Settings,
) -> None:
    client = ConfluentKafka(confluent_config(migrated), connect_timeout=30)
    await client.start()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.EXPOSURE)
    try:
        futures = []
        for partition in sorted(await client.partitions_for(topic)):
            batch = client.create_batch()
            for index in range(200):
                value = orjson.dumps({"partition": partition, "index": index})
                assert batch.append(key=b"k", value=value, timestamp=None)
            futures.append(await client.send_batch(batch, topic, partition))
        empty = await client.send_batch(ConfluentBatch(1024), topic, 0)
        assert await asyncio.wait_for(asyncio.gather(*futures, empty), 30) == [None] * (
            len(futures) + 1
        )
    finally:
        await client.stop()
    records = await read_topic(migrated, EventKind.EXPOSURE, 200 * len(futures))
    assert sorted((r["partition"], r["index"]) for r in records) == sorted(
        (partition, index) for partition in range(len(futures)) for index in range(200)
    )


@pytest.mark.kafka
async def test_a_batch_larger_than_the_local_queue_waits_for_room_and_arrives_once_each(
    migrated: Settings,
) -> None:
    """Queued until librdkafka's queue is full, then resumed where it stopped once there is
    room: no record skipped, none queued twice."""
    config = {**confluent_config(migrated), "queue.buffering.max.messages": 7}
    client = ConfluentKafka(config, connect_timeout=30)
    await client.start()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.EXPOSURE)
    try:
        batch = client.create_batch()
        for index in range(100):
            assert batch.append(key=b"k", value=orjson.dumps({"index": index}), timestamp=None)
        assert await asyncio.wait_for(await client.send_batch(batch, topic, 0), 30) is None
    finally:
        await client.stop()
    records = await read_topic(migrated, EventKind.EXPOSURE, 100)
    assert sorted(record["index"] for record in records) == list(range(100))


@pytest.mark.kafka
async def test_a_batch_waiting_for_room_when_the_producer_stops_fails_instead_of_queueing(
    migrated: Settings,
) -> None:
    """A full local queue is waited out record by record; a stop meanwhile must fail the
    batch, not queue its rest into a producer nobody polls any more."""
    config = {
        **confluent_config(migrated),
        "queue.buffering.max.messages": 5,
        "linger.ms": 10_000,  # the first five stay queued, so the sixth waits for room
        "message.timeout.ms": 60_000,
    }
    client = ConfluentKafka(config, connect_timeout=30)
    await client.start()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.EXPOSURE)
    batch = client.create_batch()
    for index in range(50):
        assert batch.append(key=b"k", value=b"%d" % index, timestamp=None)
    sending = asyncio.create_task(client.send_batch(batch, topic, 0))
    await asyncio.sleep(0.2)
    assert not sending.done()  # waiting for room
    await client.stop()
    with pytest.raises(KafkaError):
        await sending


@pytest.mark.kafka
async def test_a_record_waiting_for_room_when_the_producer_stops_fails_instead_of_queueing(
    migrated: Settings,
) -> None:
    """The same for one record through ``send`` (the edge's fallback when the queue is full)."""
    config = {
        **confluent_config(migrated),
        "queue.buffering.max.messages": 5,
        "linger.ms": 10_000,
        "message.timeout.ms": 60_000,
    }
    client = ConfluentKafka(config, connect_timeout=30)
    await client.start()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.EXPOSURE)
    for index in range(5):
        await client.send(topic, b"%d" % index, b"k", 0)
    sending = asyncio.create_task(client.send(topic, b"sixth", b"k", 0))
    await asyncio.sleep(0.2)
    assert not sending.done()  # waiting for room
    await client.stop()
    with pytest.raises(KafkaError):
        await sending
