"""Producing accepted events to Kafka, acknowledged before the client hears 2xx.

The producer connects in the background, retrying with backoff, so that a service
started while Kafka is down still serves the control plane (resolve is called before
every LLM request and must not wait for Kafka); until it is connected the edge answers
503 and ``/readyz`` reports Kafka unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from ingest.confluent_producer import ConfluentBatch, ConfluentKafka
from ingest.deadlines import Deadlines

log = logging.getLogger(__name__)

KEY_HASHES_KEPT = 10_000
"""Murmur2 hashes of keys kept by a producer before it forgets them all and starts again."""


class ProduceFailed(Exception):
    """Kafka did not acknowledge a record; the client must retry (503)."""


class NotConnected(ProduceFailed):
    """The producer has not reached Kafka yet (it keeps trying in the background)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between connection attempts: doubling from ``first`` up to ``most`` seconds.

    Each wait is drawn from its upper half at random, so replicas that lost Kafka together
    do not all knock again at the same instant.
    """

    first: float = 0.25
    most: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        ceiling = min(self.most, self.first * 2 ** min(attempt - 1, 32))
        return random.uniform(ceiling / 2, ceiling)


class Outgoing(NamedTuple):
    """One record to produce: topic, key (the prompt) and the encoded value."""

    topic: str
    key: bytes
    value: bytes


class EventProducer:
    """A thin wrapper that turns every Kafka failure into :class:`ProduceFailed`.

    Sends from concurrent requests share the producer's batches (linger, compression),
    so awaiting one acknowledgement per request does not serialize requests; a batch of
    events is appended whole first and its acknowledgements awaited together.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer | ConfluentKafka,
        ack_timeout: float,
        backoff: Backoff | None = None,
    ) -> None:
        self._producer: Any = producer
        # librdkafka partitions by itself with the same rule (murmur2 of the key), in C.
        self._partitions_itself = bool(getattr(producer, "partitions_itself", False))
        self._ack_timeout = ack_timeout
        self._backoff = backoff or Backoff()
        self._connected = False
        self._connecting: asyncio.Task[None] | None = None
        self._hashes: dict[bytes, int] = {}
        self._deadlines = Deadlines()

    @property
    def ack_timeout(self) -> float:
        """Seconds one call waits for its acknowledgements before reporting failure."""
        return self._ack_timeout

    @property
    def connected(self) -> bool:
        """Whether the producer has reached the cluster (it reconnects on its own after)."""
        return self._connected

    async def start(self) -> None:
        """Try to connect once; if that fails, go on trying in the background and return.

        The first attempt is made here so that a service whose broker answers is
        connected when it starts listening (one attempt lasts at most the Kafka request
        timeout); only the retries are left to the background.
        """
        if self._connecting is not None or self._connected:
            return
        if not await self._attempt(1):
            self._connecting = asyncio.create_task(self._keep_trying(), name="kafka-connect")

    async def wait_connected(self) -> None:
        """Return once the producer has reached the cluster (tests, tools)."""
        if self._connecting is not None:
            await asyncio.shield(self._connecting)

    async def stop(self) -> None:
        """Give up connecting, or flush what is buffered; then disconnect."""
        connecting = self._connecting
        if connecting is not None and not connecting.done():
            connecting.cancel()
            await asyncio.wait([connecting])
        await self._producer.stop()

    async def check(self) -> None:
        """Fetch cluster metadata: proves a broker answers."""
        if not self._connected:
            raise NotConnected("the producer has not reached Kafka yet")
        await self._producer.client.fetch_all_metadata()

    async def _keep_trying(self) -> None:
        """Attempt again after each backoff delay until Kafka is reached."""
        attempt = 1
        while True:
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1
            if await self._attempt(attempt):
                return

    async def _attempt(self, attempt: int) -> bool:
        """Start the Kafka client once; whether it reached a broker."""
        try:
            await self._producer.start()
        except Exception as error:  # any reason (refused, timed out, auth): try again later
            log.warning(
                "Kafka is unreachable (attempt %d: %s); event routes answer 503 until it is",
                attempt,
                error,
            )
            return False
        self._connected = True
        if attempt > 1:
            log.info("reached Kafka after %d attempts; accepting events", attempt)
        return True

    def create_batch(self) -> BatchBuilder | ConfluentBatch:
        """An empty batch of records for :meth:`send_batch` (records appended by the caller)."""
        return self._producer.create_batch()

    async def send_batch(
        self, batch: BatchBuilder | ConfluentBatch, topic: str, partition: int
    ) -> asyncio.Future[Any]:
        """Queue a whole batch for one partition; the future is done once Kafka has it.

        Raises :class:`ProduceFailed` if it cannot even be queued (no metadata, closed).
        """
        try:
            delivery: asyncio.Future[Any] = await self._producer.send_batch(
                batch, topic, partition=partition
            )
        except KafkaError as error:
            raise _failed(error) from error
        return delivery

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions, sorted."""
        try:
            return sorted(await self._producer.partitions_for(topic))
        except KafkaError as error:
            raise _failed(error) from error

    async def produce(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record and wait until the cluster has it (acks=all).

        Every single-event request takes this path, so it does what :meth:`produce_many`
        does for one record without its lists: one deadline (the ack timeout) over the
        send and the acknowledgement. librdkafka's delivery future is ours: queued without
        a coroutine, awaited right here, and failed at the deadline by the producer's one
        timer for all (``ingest.deadlines``). aiokafka's is waited for, never cancelled.
        """
        try:
            delivery = self._send_now(topic, key, value)
        except KafkaError as error:
            raise _failed(error) from error
        if delivery is not None:
            if not delivery.done():
                loop = delivery.get_loop()  # not get_running_loop(): a getpid() each call
                self._deadlines.watch(loop, loop.time() + self._ack_timeout, delivery)
                try:
                    await delivery
                except asyncio.CancelledError:
                    delivery.add_done_callback(_retrieve)
                    raise
                except Exception:  # read by _outcome, as every failure
                    pass
        else:
            delivery = await self._sent(topic, key, value)
        failure = _outcome(delivery)
        if failure is not None:
            log.warning("a record was not acknowledged by Kafka: %r", failure.__cause__)
            raise failure

    async def _sent(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        """:meth:`produce`'s other way: a send that needs a coroutine (aiokafka's, or
        librdkafka's while its queue is full), its delivery settled or overdue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ack_timeout
        try:
            async with asyncio.timeout_at(deadline):
                delivery = await self._send(topic, key, value)
        except (KafkaError, TimeoutError) as error:
            raise _failed(error) from error
        if self._partitions_itself:  # the future is ours: awaited, its deadline shared
            if not delivery.done():
                await self._acknowledged(loop, [delivery], deadline)
        else:
            delivery.add_done_callback(_retrieve)
            if not delivery.done():
                await _settled(loop, delivery, deadline)
        return delivery

    def _send_now(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any] | None:
        """librdkafka's queue takes a record without a coroutine; None: use :meth:`_send`."""
        if not self._partitions_itself:
            return None
        delivery: asyncio.Future[Any] | None = self._producer.send_now(topic, value, key)
        return delivery

    async def _send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        """Hand one record to the client, waiting for room in its buffer if need be."""
        partition = None if self._partitions_itself else await self._partition(topic, key)
        delivery: asyncio.Future[Any] = await self._producer.send(
            topic, value=value, key=key, partition=partition
        )
        return delivery

    async def _partition(self, topic: str, key: bytes) -> int:
        """The partition aiokafka's default (murmur2) partitioner gives ``key``.

        A key's hash is kept (the keys are prompts, few and hot); the partition count is
        read from the producer's metadata every time, so a topic that grows is followed.
        """
        known: list[int] = sorted(await self._producer.partitions_for(topic))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= KEY_HASHES_KEPT:
                self._hashes.clear()
            hashed = self._hashes[key] = int(murmur2(key)) & 0x7FFFFFFF
        return known[hashed % len(known)]

    async def produce_many(self, records: Sequence[Outgoing]) -> list[ProduceFailed | None]:
        """Send every record, then await all acknowledgements together.

        One deadline (the ack timeout) covers the whole call. The result has one entry
        per record: None once the cluster acknowledged it, else why it failed. A record
        that is not acknowledged in time may still land later; its client was told 503
        and retries, which the idempotency key (or the signal's new id) makes visible.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ack_timeout
        deliveries: list[asyncio.Future[Any] | ProduceFailed] = []
        own = self._partitions_itself
        if own:
            self._queue_now(records, deliveries)
        if len(deliveries) < len(records):
            try:
                async with asyncio.timeout_at(deadline):
                    await self._send_all(records[len(deliveries) :], deliveries)
            except TimeoutError as error:
                deliveries.extend(_failed(error) for _ in records[len(deliveries) :])
        pending = [item for item in deliveries if isinstance(item, asyncio.Future)]
        if pending and own:
            await self._acknowledged(loop, pending, deadline)
        elif pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        outcomes = [_outcome(item) for item in deliveries]
        failures = [failure for failure in outcomes if failure is not None]
        if failures:
            log.warning(
                "%d of %d records were not acknowledged by Kafka: %r",
                len(failures),
                len(outcomes),
                failures[0].__cause__,
            )
        return outcomes

    def _queue_now(
        self, records: Sequence[Outgoing], deliveries: list[asyncio.Future[Any] | ProduceFailed]
    ) -> None:
        """Hand librdkafka records without a coroutine until its queue is full (or all are)."""
        send_now = self._producer.send_now
        for topic, key, value in records:
            try:
                delivery = send_now(topic, value, key)
            except KafkaError as error:
                deliveries.append(_failed(error))
                continue
            if delivery is None:
                return
            deliveries.append(delivery)

    async def _send_all(
        self, records: Sequence[Outgoing], deliveries: list[asyncio.Future[Any] | ProduceFailed]
    ) -> None:
        """Append every record to the producer's batches, one delivery future each.

        The partition of a key is the one aiokafka's murmur2 rule gives it, its hash kept
        (a batch's events usually share their prompt).
        """
        for topic, key, value in records:
            try:
                delivery = self._send_now(topic, key, value)
                if delivery is None:
                    delivery = await self._send(topic, key, value)
            except KafkaError as error:
                deliveries.append(_failed(error))
                continue
            if not self._partitions_itself:  # ours are awaited by _acknowledged
                delivery.add_done_callback(_retrieve)
            deliveries.append(delivery)

    async def _acknowledged(
        self,
        loop: asyncio.AbstractEventLoop,
        deliveries: list[asyncio.Future[Any]],
        deadline: float,
    ) -> None:
        """Return once each of our own delivery futures is settled, or failed at ``deadline``.

        They are awaited in order: the poll thread settles a whole poll's reports at once,
        so this wakes about once per poll, not once per record, and no waiter is made.
        """
        for delivery in deliveries:
            if not delivery.done():
                self._deadlines.watch(loop, deadline, delivery)
        try:
            for delivery in deliveries:
                with contextlib.suppress(Exception):  # failures are read by the caller
                    await delivery
        except asyncio.CancelledError:
            for delivery in deliveries:
                delivery.add_done_callback(_retrieve)
            raise


def _outcome(item: asyncio.Future[Any] | ProduceFailed) -> ProduceFailed | None:
    if isinstance(item, ProduceFailed):
        return item
    if not item.done():
        return _failed(TimeoutError("not acknowledged in time"))
    if item.cancelled():
        return _failed(asyncio.CancelledError())
    error = item.exception()
    return _failed(error) if error is not None else None


def _failed(error: BaseException) -> ProduceFailed:
    failure = ProduceFailed(str(error) or type(error).__name__)
    failure.__cause__ = error
    return failure


async def _settled(
    loop: asyncio.AbstractEventLoop, delivery: asyncio.Future[Any], deadline: float
) -> None:
    """Return once ``delivery`` is done or the loop's clock reaches ``deadline``."""
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_at(deadline, wake)
    delivery.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        delivery.remove_done_callback(wake)


def _retrieve(delivery: asyncio.Future[Any]) -> None:
    """Mark a late failure as seen, so asyncio does not log it as never retrieved."""
    if not delivery.cancelled():
        delivery.exception()
