"""The worker process: consumer group member, ClickHouse writer, health endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from aiohttp import web

from promptline.clickhouse import connect
from promptline.http.bodies import json_response
from promptline.kafka import create_consumer, create_producer
from promptline.settings import Settings
from promptline.topics import dead_letter_topic, topic_name
from workers.batch import Batch
from workers.coordinator import WarehouseWorker
from workers.dead_letters import DeadLetters
from workers.dedup import DuplicateFinder
from workers.partition_reader import PartitionReader, create_reader_consumer
from workers.recovery import BlockRecovery
from workers.sink import ClickHouseSink
from workers.tables import TABLES

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run one worker until ``stop`` is set; flushes and commits before returning."""
    specs = {topic_name(settings.kafka_topic_prefix, kind): spec for kind, spec in TABLES.items()}
    sink = ClickHouseSink(await connect(settings))
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
    consumer.subscribe(list(specs), listener=worker.rebalance_listener())
    health = await _start_health_server(settings, worker)
    try:
        await producer.start()
        await reader.start()
        await consumer.start()
        log.info("worker consuming %s", sorted(specs))
        await worker.run(stop)
    finally:
        await consumer.stop()
        await reader.stop()
        await producer.stop()
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
