"""The worker process: consumer group member, ClickHouse writer, health endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from promptline.clickhouse import connect
from promptline.http.bodies import json_response
from promptline.kafka import create_consumer, create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, dead_letter_topic, topic_name
from workers.batch import Batch
from workers.coordinator import WarehouseWorker
from workers.dead_letters import DeadLetters
from workers.dedup import DuplicateFinder
from workers.partition_reader import PartitionReader, create_reader_consumer
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
    duplicates = DuplicateFinder(sink, timedelta(days=window) if window else None)
    dead_letters = DeadLetters(producer, dead_letter_topic(settings.kafka_topic_prefix))
    worker = WarehouseWorker(
        consumer,
        sink,
        dead_letters,
        specs,
        Batch(settings.worker_batch_max_rows, settings.worker_batch_max_seconds),
        duplicates,
        BlockRecovery(sink, reader, duplicates, dead_letters),
    )
    return WorkerParts(worker, consumer, reader, producer, list(specs))


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run one worker until ``stop`` is set; flushes and commits before returning."""
    sink = ClickHouseSink(await connect(settings))
    parts = assemble_worker(settings, sink)
    health = await _start_health_server(settings, parts.worker)
    try:
        await parts.start()
        log.info("worker consuming %s", sorted(parts.topics))
        await parts.worker.run(stop)
    finally:
        await parts.stop()
        await sink.close()
        if health is not None:
            await health.cleanup()


async def _start_health_server(settings: Settings, worker: WarehouseWorker) -> web.AppRunner | None:
    if not settings.worker_http_port:
        return None

    async def healthz(_request: web.Request) -> web.Response:
        return json_response({"status": "ok", **worker.stats.as_dict()})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.listen_host, settings.worker_http_port).start()
    return runner


def main(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT."""

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(_main())
