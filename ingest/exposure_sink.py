"""Resolve's exposures to Kafka, in the background: resolve never waits for the broker.

``expose`` (on resolve's hot path) only appends to a list. Every ``interval`` a task takes
the list, encodes each exposure as its record (``schemas.records.ExposureRecord``'s wire
form, written here by hand: the hot path's process pays for every exposure) and hands them
to the producer as whole batches, one partition per flush in turn (an exposure's order
does not matter, and a batch per flush is far cheaper than a send per record). The unit id
is computed here too, off the request.

Exposures are measurements, not client events: none is answered to anyone, so a lost one
is counted instead of retried by a client. What cannot be sent is counted in
``promptline_exposures_total`` by reason (docs/rollouts.md, "Exposures"): the queue is
bounded (``exposure_queue_max``), so a broker that is down for long costs memory up to it,
then the newest exposures; resolve answers all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
import uuid_utils

from controlplane.catalog import Principal
from controlplane.resolve import Resolution
from ingest.metrics import EdgeMetrics
from ingest.producer import EventProducer, ProduceFailed
from promptline.units import unit_id

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 0.05
Queued = tuple[Principal, Resolution, str, float]


class Timestamps:
    """``2026-12-07T01:02:03.456Z`` for a Unix time, as bytes: the second's part formatted
    once, and a millisecond's whole text reused by the exposures that share it."""

    __slots__ = ("_millisecond", "_prefix", "_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._millisecond = -1
        self._text = b""

    def format(self, moment: float) -> bytes:
        """The record's ``received_at`` for ``moment`` (milliseconds, UTC)."""
        millisecond = int(moment * 1000)
        if millisecond == self._millisecond:
            return self._text
        second = millisecond // 1000
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        self._millisecond = millisecond
        self._text = f"{self._prefix}.{millisecond - second * 1000:03d}Z".encode()
        return self._text


MAX_CACHED_PARTS = 10_000
"""Encoded fixed parts kept before the cache starts over (old deployments' linger)."""


class ExposureEncoder:
    """Encodes exposure records (docs/topics.md, "exposures"), the fields fixed per project,
    version and rule encoded once.

    Per exposure only its id, time and unit are encoded: a dict of eleven fields through
    orjson cost more than the rest of the sink's work together.
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int, str, bool, int | None], tuple[bytes, bytes]] = {}

    def encode(
        self,
        principal: Principal,
        resolution: Resolution,
        user_id: str,
        moment: bytes,
        hashed: bool,
    ) -> tuple[bytes, bytes]:
        """The record's Kafka key (the prompt's id) and value."""
        deployment = resolution.deployment_id
        key = (
            principal.project_id.int,
            resolution.version_id.int,
            resolution.traffic_rule,
            resolution.by_split,
            deployment.int if deployment is not None else None,
        )
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= MAX_CACHED_PARTS:
                self._parts.clear()
            parts = self._parts[key] = (
                str(resolution.prompt_id).encode(),
                _head(principal, resolution),
            )
        prompt, head = parts
        unit = unit_id(principal.unit_key, user_id, hashed)
        # A hashed unit is hex: it needs no JSON escaping, unlike a user id as given.
        quoted = b'"' + unit.encode() + b'"' if hashed else orjson.dumps(unit)
        value = (
            head
            + str(uuid_utils.uuid7()).encode()
            + b'","received_at":"'
            + moment
            + b'","unit_id":'
            + quoted
            + b"}"
        )
        return prompt, value


def _head(principal: Principal, resolution: Resolution) -> bytes:
    """The record up to its event id's value: every field fixed for this answer's kind."""
    fixed: dict[str, Any] = {
        "v": 1,
        "kind": "exposure",
        "org_id": principal.org_id,
        "project_id": principal.project_id,
        "prompt_id": resolution.prompt_id,
        "version": resolution.version_number,
        "version_hash": resolution.content_hash,
        "rule": resolution.traffic_rule,
        "by_split": resolution.by_split,
        "source": "resolve",
    }
    if resolution.deployment_id is not None:
        fixed["deployment_id"] = resolution.deployment_id
    return orjson.dumps(fixed)[:-1] + b',"event_id":"'


class KafkaExposures:
    """An exposure sink (``controlplane.exposures.ExposureSink``) over the edge's producer."""

    def __init__(
        self,
        producer: EventProducer,
        topic: str,
        metrics: EdgeMetrics,
        *,
        hashed: bool = True,
        queue_max: int = 100_000,
        interval: float = FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._hashed = hashed
        self._queue_max = queue_max
        self._interval = interval
        self._queue: list[Queued] = []
        self._overflow = 0
        self._next_partition = 0
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self._times = Timestamps()
        self._encoder = ExposureEncoder()

    def expose(self, principal: Principal, resolution: Resolution, user_id: str) -> None:
        """Queue one exposure (the hot path: an append, or a count once the queue is full)."""
        queue = self._queue
        if len(queue) < self._queue_max:
            queue.append((principal, resolution, user_id, time.time()))
        else:
            self._overflow += 1

    def start(self) -> None:
        """Start flushing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="exposures")

    async def stop(self, grace: float) -> None:
        """Flush what is queued and wait up to ``grace`` seconds for Kafka's acknowledgements."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.flush()
                if self._in_flight:
                    await asyncio.wait(set(self._in_flight))
        self._count("shutdown", len(self._queue) + self._overflow)
        self._queue, self._overflow = [], 0
        for delivery in self._in_flight:
            delivery.cancel()

    @property
    def queued(self) -> int:
        """Exposures waiting for the next flush."""
        return len(self._queue)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # never let the flusher die: count and go on
                log.exception("flushing exposures failed")

    async def flush(self) -> None:
        """Send everything queued now as batches, without waiting for acknowledgements."""
        if self._overflow:
            self._count("queue_full", self._overflow)
            self._overflow = 0
        queue = self._queue
        if not queue:
            return
        if not self._producer.connected:
            self._queue = []
            self._count("kafka_unavailable", len(queue))
            return
        try:
            partitions = await self._producer.partitions(self._topic)
        except ProduceFailed as error:
            log.warning("exposures: no partitions for %s: %s", self._topic, error)
            self._queue = []
            self._count("kafka_unavailable", len(queue))
            return
        self._queue = []
        partition = partitions[self._next_partition % len(partitions)]
        self._next_partition += 1
        await self._send(queue, partition)

    async def _send(self, queue: list[Queued], partition: int) -> None:
        """Append the encoded exposures to batches for ``partition`` and queue each full one."""
        hashed, times, encode = self._hashed, self._times, self._encoder.encode
        batch = self._producer.create_batch()
        count = 0
        for principal, resolution, user_id, moment in queue:
            key, value = encode(principal, resolution, user_id, times.format(moment), hashed)
            if batch.append(key=key, value=value, timestamp=None) is None:
                await self._submit(batch, count, partition)
                batch, count = self._producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None)
            count += 1
        await self._submit(batch, count, partition)

    async def _submit(self, batch: Any, count: int, partition: int) -> None:
        if not count:
            return
        try:
            delivery = await self._producer.send_batch(batch, self._topic, partition)
        except ProduceFailed as error:
            log.warning("exposures: a batch of %d could not be queued: %s", count, error)
            self._count("kafka_failed", count)
            return
        self._in_flight.add(delivery)
        delivery.add_done_callback(lambda done: self._delivered(done, count))

    def _delivered(self, delivery: asyncio.Future[Any], count: int) -> None:
        self._in_flight.discard(delivery)
        if delivery.cancelled() or delivery.exception() is not None:
            if not delivery.cancelled():
                log.warning(
                    "exposures: Kafka refused a batch of %d: %r", count, delivery.exception()
                )
            self._count("kafka_failed", count)
        else:
            self._count("sent", count)

    def _count(self, outcome: str, count: int) -> None:
        if count:
            self._metrics.exposures.labels(outcome).inc(count)
