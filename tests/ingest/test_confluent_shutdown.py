"""Stopping the librdkafka producer while it connects leaves nothing running behind it.

A service stopped while its broker is unreachable cancels the connection attempt; the
thread creating the producer must not go on to start a poll thread nobody stops, nor keep
the process from exiting.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaError

from ingest.confluent_producer import ConfluentKafka
from ingest.producer import EventProducer


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """An address that accepts connections and never answers: metadata never comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def _poll_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kafka-poll" and t.is_alive()]


def _threads_creating_a_producer() -> int:
    """Threads still inside ``ConfluentKafka._begin`` (creating one, waiting for metadata)."""
    begin = ConfluentKafka._begin.__code__
    return sum(
        any(frame.f_code is begin for frame, _line in traceback.walk_stack(top))
        for top in sys._current_frames().values()
    )


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.3])
async def test_a_start_cancelled_while_connecting_leaves_no_poll_thread(
    silent_broker: str, delay: float
) -> None:
    before = _poll_threads()
    client = ConfluentKafka({"bootstrap.servers": silent_broker}, connect_timeout=3600)
    starting = asyncio.create_task(client.start())
    await asyncio.sleep(delay)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert _threads_creating_a_producer() == 0  # else it waits on for an hour, then exits
    assert _poll_threads() == before
    with pytest.raises(KafkaError):  # nothing left running to send through
        await client.send("events", b"{}", key=b"k")


async def test_stopping_the_edge_producer_while_it_retries_ends_its_poll_threads(
    silent_broker: str,
) -> None:
    before = _poll_threads()
    client = ConfluentKafka({"bootstrap.servers": silent_broker}, connect_timeout=0.5)
    producer = EventProducer(client, ack_timeout=1.0)
    await producer.start()  # the first attempt times out; retries go on in the background
    assert not producer.connected
    await asyncio.sleep(0.7)  # into a retry
    await producer.stop()
    assert _threads_creating_a_producer() == 0
    assert _poll_threads() == before


async def test_a_close_cancelled_while_the_poll_thread_ends_leaves_it_to_the_next_close() -> None:
    client = ConfluentKafka({"bootstrap.servers": "127.0.0.1:9"}, connect_timeout=1.0)
    ending = threading.Event()
    poller = threading.Thread(target=ending.wait, args=(5.0,), name="kafka-poll", daemon=True)
    poller.start()
    client._producer = cast(Any, object())  # a producer whose poll thread is ending
    client._poller = poller
    closing = asyncio.create_task(client._close(flush=False))
    await asyncio.sleep(0.05)  # waiting for the poll thread
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    client._producer = cast(Any, object())
    asyncio.get_running_loop().call_later(0.1, ending.set)
    await client._close(flush=False)  # the stop after it
    assert not poller.is_alive()
