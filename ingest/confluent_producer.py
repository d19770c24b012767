"""confluent-kafka (librdkafka) behind the calls ``EventProducer`` makes of aiokafka.

librdkafka batches, compresses and sends from its own threads, in C, so a record costs the
event loop one ``produce`` call and one delivery future instead of aiokafka's Python
batching and sender task. Deliveries are reported by a poll thread of ours; it hands the
loop all reports of one poll with one ``call_soon_threadsafe``, not one wake-up per
record. Failures are raised as aiokafka's ``KafkaError`` so ``EventProducer`` treats both
clients alike. Every blocking librdkafka call (metadata, flush) runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka import KafkaException, Message, Producer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
"""Longest a poll waits with nothing to report (it returns at once when there is)."""
CLOSE_WAIT_SECONDS = 10.0
"""Longest the poll thread's end, or librdkafka's destroy, is waited for when closing."""
FULL_QUEUE_WAIT = 0.002
"""Pause before trying again when librdkafka's local queue is full."""
UNREACHABLE = {ConfluentError._ALL_BROKERS_DOWN, ConfluentError._TRANSPORT}
"""Errors that mean no broker answers: the first connection attempt fails on them."""

Report = tuple[asyncio.Future[Any], Any]


class ConfluentKafka:
    """A librdkafka producer with the async calls of ``AIOKafkaProducer`` the edge uses.

    ``send`` with ``partition=None`` leaves the partition to librdkafka's configured
    partitioner (``murmur2_random``: aiokafka's rule for a key).
    """

    partitions_itself = True
    """Tells ``EventProducer`` to leave partitioning to librdkafka."""

    def __init__(self, config: dict[str, Any], connect_timeout: float) -> None:
        self._config = config
        self._connect_timeout = connect_timeout
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: list[Report] = []
        self._running = False
        self._poller: threading.Thread | None = None
        self._unreachable: str | None = None
        self._abandon = threading.Event()
        self.client = self  # ``EventProducer.check`` calls ``client.fetch_all_metadata()``

    async def start(self) -> None:
        """Create the producer and fetch metadata once; raise if no broker answers.

        If the caller is cancelled meanwhile (the service stops while connecting), the
        thread is told to give up and awaited before what it made is closed: closing first
        would leave it to create a producer and a poll thread nobody ever stops.
        """
        self._loop = asyncio.get_running_loop()
        self._unreachable = None
        self._abandon.clear()
        begun = asyncio.ensure_future(asyncio.to_thread(self._begin))
        try:
            await asyncio.shield(begun)
        except BaseException:
            self._abandon.set()
            await asyncio.wait([begun])  # within one metadata step once abandoned
            if not begun.cancelled():
                begun.exception()  # retrieved: what is raised here is the caller's reason
            await self._close(flush=False)
            raise

    def _begin(self) -> None:
        """(In a thread.) Create the producer, start polling it, wait for metadata."""
        # librdkafka's own log lines go through Python's logging (the service's format and
        # level), not straight to stderr; they are emitted from the poll thread.
        producer = Producer({**self._config, "error_cb": self._error, "logger": log})
        self._producer = producer
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()
        self._first_metadata(producer)

    def _first_metadata(self, producer: Producer) -> None:
        """Wait for metadata, giving up early once librdkafka says no broker answers."""
        waited = 0.0
        while True:
            step = min(0.2, self._connect_timeout - waited)
            try:
                producer.list_topics(timeout=step)
                return
            except KafkaException as error:
                waited += step
                if self._unreachable is not None:
                    raise KafkaConnectionError(self._unreachable) from error
                if self._abandon.is_set():
                    raise KafkaConnectionError("stopped while connecting") from error
                if waited >= self._connect_timeout:
                    raise KafkaTimeoutError(f"no metadata: {error}") from error

    def _error(self, error: ConfluentError) -> None:
        """librdkafka's global errors (poll thread): remembered for the first attempt."""
        if error.code() in UNREACHABLE:
            self._unreachable = error.str()
        log.debug("librdkafka: %s", error.str())

    async def stop(self) -> None:
        """Flush what is buffered (in a thread), then end the poll thread."""
        await self._close(flush=True)

    async def _close(self, flush: bool) -> None:
        producer = self._producer
        if producer is None:
            return
        self._running = False
        poller, self._poller = self._poller, None
        if poller is not None:
            try:
                await _bounded(poller.join, "the poll thread to end")
            except asyncio.CancelledError:
                # Cancelled while it ends (a stop that cancels a failed start's cleanup):
                # left for the close that follows to wait for.
                self._poller = poller
                raise
        if flush:
            # Deliveries reported while flushing run their callbacks in this thread.
            await asyncio.to_thread(producer.flush, self._connect_timeout)
            self._hand_over()
        self._producer = None
        held = [producer]
        del producer
        await _bounded(held.clear, "librdkafka to close")  # its destroy may block

    async def fetch_all_metadata(self) -> None:
        """Cluster metadata: proves a broker answers (raises ``KafkaError`` if none does)."""
        producer = self._started()
        try:
            await asyncio.to_thread(producer.list_topics, None, self._connect_timeout)
        except KafkaException as error:
            raise KafkaConnectionError(str(error)) from error

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions, from librdkafka's metadata."""
        producer = self._started()
        try:
            metadata = await asyncio.to_thread(producer.list_topics, topic, self._connect_timeout)
        except KafkaException as error:
            raise KafkaConnectionError(str(error)) from error
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise KafkaError(f"no partitions known for {topic}")
        return set(found.partitions)

    async def send(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        """Queue one record; the future is done once the broker acknowledged it (or not).

        A full local queue is waited out here (the caller's deadline bounds the wait), as
        aiokafka waits for room in its buffer.
        """
        producer = self._started()
        assert self._loop is not None
        delivery: asyncio.Future[Any] = self._loop.create_future()
        await self._queue(
            producer, topic, value, key, partition, partial(self._delivered, delivery)
        )
        return delivery

    async def _queue(
        self,
        producer: Producer,
        topic: str,
        value: bytes,
        key: bytes | None,
        partition: int | None,
        report: Callable[[Any, Any], None],
    ) -> None:
        """Hand librdkafka one record, waiting out a full local queue; raises ``KafkaError``
        if librdkafka refuses it, or if the producer stopped while waiting for room (the
        record would go to a producer nobody polls any more)."""
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value, key, on_delivery=report)
                else:
                    producer.produce(topic, value, key, partition, on_delivery=report)
                return
            except BufferError:
                await asyncio.sleep(FULL_QUEUE_WAIT)
                if not self._running:
                    raise KafkaConnectionError("the producer is not running") from None
            except KafkaException as error:
                raise KafkaError(str(error)) from error

    def send_now(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any] | None:
        """Queue one record without a coroutine; None when librdkafka's queue is full.

        The hot path: ``EventProducer`` falls back to :meth:`send`, which waits for room,
        only when this answers None.
        """
        producer, loop = self._producer, self._loop
        if producer is None or loop is None or not self._running:
            raise KafkaConnectionError("the producer is not running")
        delivery: asyncio.Future[Any] = loop.create_future()
        try:
            producer.produce(topic, value, key, on_delivery=partial(self._delivered, delivery))
        except BufferError:
            return None
        except KafkaException as error:
            raise KafkaError(str(error)) from error
        return delivery

    def create_batch(self) -> ConfluentBatch:
        """An empty batch for :meth:`send_batch` (the exposure sink fills it)."""
        return ConfluentBatch(int(self._config.get("batch.size", 1_048_576)))

    async def send_batch(
        self, batch: ConfluentBatch, topic: str, partition: int
    ) -> asyncio.Future[Any]:
        """Queue a batch's records to ``partition``; one future for all their acknowledgements.

        The records share one delivery callback that counts them down in the poll thread and
        reports the batch to the loop once, when the last is acknowledged or the first fails:
        no future and no loop callback per record (resolve's exposures come this way, one per
        answer). A full local queue is waited out as in :meth:`send`.
        """
        producer = self._started()
        assert self._loop is not None
        done: asyncio.Future[Any] = self._loop.create_future()
        if not batch.records:
            done.set_result(None)
            return done
        report = _BatchReport(self, done, len(batch.records))
        for key, value in batch.records:
            try:
                await self._queue(producer, topic, value, key, partition, report)
            except KafkaError:
                report.abandon()  # the records queued before are nobody's to report
                raise
        return done

    def _started(self) -> Producer:
        if self._producer is None or not self._running:
            raise KafkaConnectionError("the producer is not running")
        return self._producer

    def _delivered(self, delivery: asyncio.Future[Any], error: Any, _message: Message) -> None:
        """librdkafka's delivery report (poll thread): kept for the loop."""
        self._reports.append((delivery, error))

    def _poll(self) -> None:
        """Serve librdkafka's reports until stopped, handing each poll's to the loop at once."""
        producer, loop = self._producer, self._loop
        assert producer is not None and loop is not None
        while self._running:
            producer.poll(POLL_SECONDS)
            if self._reports:
                reports, self._reports = self._reports, []
                try:
                    loop.call_soon_threadsafe(_settle, reports)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _hand_over(self) -> None:
        """Settle reports collected outside the poll thread (flush), on the loop's thread."""
        reports, self._reports = self._reports, []
        _settle(reports)


async def _bounded(call: Callable[[], object], what: str) -> None:
    """Run a blocking ``call`` in a daemon thread of its own, waiting at most
    ``CLOSE_WAIT_SECONDS``.

    Not the loop's default executor: a librdkafka call that never returns there would hold
    the process's exit forever (the loop waits for its executor's threads when it closes).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def run() -> None:
        try:
            call()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(finish)

    threading.Thread(target=run, name="kafka-close", daemon=True).start()
    try:
        await asyncio.wait_for(done, CLOSE_WAIT_SECONDS)
    except TimeoutError:
        log.warning("waited %.0f s for %s; going on without it", CLOSE_WAIT_SECONDS, what)


def _settle(reports: list[Report]) -> None:
    """Resolve delivery futures on the loop: None once acknowledged, else a ``KafkaError``."""
    for delivery, error in reports:
        if delivery.done():
            continue
        if error is None:
            delivery.set_result(None)
        else:
            delivery.set_exception(KafkaError(error.str()))


class ConfluentBatch:
    """Records for one :meth:`ConfluentKafka.send_batch`, like aiokafka's ``BatchBuilder``."""

    def __init__(self, max_bytes: int) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self._room = max_bytes

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None) -> object | None:
        """Add a record; None (nothing added) once the batch is full, as aiokafka answers."""
        size = len(value) + (len(key) if key else 0) + 64
        if self.records and size > self._room:
            return None
        self._room -= size
        self.records.append((key, value))
        return True


class _BatchReport:
    """One batch's delivery callback (poll thread): counts its records' acknowledgements and
    hands the batch's one report to the loop when the last arrives or the first fails."""

    __slots__ = ("_done", "_left", "_report", "_reported")

    def __init__(self, owner: ConfluentKafka, done: asyncio.Future[Any], count: int) -> None:
        self._report = owner._delivered
        self._done = done
        self._left = count
        self._reported = False

    def __call__(self, error: Any, message: Any) -> None:
        if self._reported:
            return
        if error is None:
            self._left -= 1
            if self._left:
                return
        self._reported = True
        self._report(self._done, error, message)

    def abandon(self) -> None:
        """Report nothing more: the batch failed before all its records were queued."""
        self._reported = True
