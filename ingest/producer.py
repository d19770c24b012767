"""Producing accepted events to Kafka, acknowledged before the client hears 2xx."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class ProduceFailed(Exception):
    """Kafka did not acknowledge a record; the client must retry (503)."""


class EventProducer:
    """A thin wrapper that turns every Kafka failure into :class:`ProduceFailed`.

    Sends from concurrent requests share the producer's batches (linger), so awaiting
    one acknowledgement per request does not serialize requests.
    """

    def __init__(self, producer: AIOKafkaProducer, ack_timeout: float) -> None:
        self._producer = producer
        self._ack_timeout = ack_timeout

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is buffered, then disconnect."""
        await self._producer.stop()

    async def check(self) -> None:
        """Fetch cluster metadata: proves a broker answers."""
        await self._producer.client.fetch_all_metadata()

    async def produce(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record and wait until the cluster has it (acks=all)."""
        try:
            delivery = await self._producer.send(topic, value=value, key=key)
            await asyncio.wait_for(delivery, timeout=self._ack_timeout)
        except (KafkaError, TimeoutError) as error:
            log.warning("produce to %s failed: %r", topic, error)
            raise ProduceFailed(str(error)) from error
