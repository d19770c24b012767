"""A worker assembled from its parts: consumer group member and ClickHouse writer.

The process around it (health and metrics server, signals, the collector) is composed in
``promptline.worker``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from promptline.kafka import create_consumer, create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, dead_letter_topic, topic_name
from workers.batch import Batch
from workers.coordinator import WarehouseWorker
from workers.dead_letters import DeadLetters
from workers.dedup import DuplicateFinder
from workers.partition_reader import PartitionReader, create_reader_consumer
from workers.progress import Progress
from workers.recovery import BlockRecovery
from workers.sink import ClickHouseSink
from workers.tables import TABLES, TableSpec

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerParts:
    """A worker and the Kafka clients it runs on, assembled but not started."""

    worker: WarehouseWorker
    consumer: AIOKafkaConsumer
    reader: PartitionReader
    producer: AIOKafkaProducer
    topics: list[str]

    async def start(self) -> None:
        """Subscribe (with the worker's rebalance listener) and start the clients."""
        self.consumer.subscribe(self.topics, listener=self.worker.rebalance_listener())
        await self.producer.start()
        await self.reader.start()
        await self.consumer.start()

    async def stop(self) -> None:
        """Stop the clients, the group's consumer first (it leaves the group)."""
        await self.consumer.stop()
        await self.reader.stop()
        await self.producer.stop()


def assemble_worker(
    settings: Settings, sink: ClickHouseSink, tables: Mapping[EventKind, TableSpec] = TABLES
) -> WorkerParts:
    """The worker ``promptline worker`` runs, over ``sink``, for ``tables``."""
    specs = {topic_name(settings.kafka_topic_prefix, kind): spec for kind, spec in tables.items()}
    producer = create_producer(settings)
    consumer = create_consumer(settings, [], settings.kafka_consumer_group)
    window = settings.worker_dedup_window_days
    reader = PartitionReader(create_reader_consumer(settings))
    progress = Progress()
    sink.report_to(progress)
    duplicates = DuplicateFinder(sink, timedelta(days=window) if window else None)
    dead_letters = DeadLetters(producer, dead_letter_topic(settings.kafka_topic_prefix))
    worker = WarehouseWorker(
        consumer,
        sink,
        dead_letters,
        specs,
        Batch(settings.worker_batch_max_rows, settings.worker_batch_max_seconds),
        duplicates,
        BlockRecovery(sink, reader, duplicates, dead_letters, progress),
        progress,
    )
    return WorkerParts(worker, consumer, reader, producer, list(specs))
