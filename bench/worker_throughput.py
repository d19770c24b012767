"""Worker benchmark: events/s from Kafka into ClickHouse, through the whole flush protocol.

``python -m bench.worker_throughput [--events N] [--batch-rows R] [--workers W] [--stored S]
[--use-env]``

Loads N records into Kafka first (80% analytics, 10% signals, 10% usage links; 5% of them
retries with an idempotency key), then starts W worker processes (``promptline worker``)
and times them until every offset is committed: fence commit, duplicate lookup, one block
insert per partition (the views included), offset commit. Throughput is counted from the
first stored row, so the consumer group's join is reported apart; the worker's CPU time per
event over the same span is read from ``/proc`` (its whole life's from ``RUSAGE_CHILDREN``).

Then, on the same records, it times a *bare loop* in this process: consume with aiokafka (a
group of its own), decode with orjson, insert into a scratch copy of each raw table with
clickhouse-connect, one insert per table per batch of the same size, commit the offsets: no
fence, no duplicate lookup, no views. The worker's events/s over the bare loop's is the
price of the flush protocol (the issue's target: at least 70%).

``--stored S`` first puts S analytics events of the same prompts, spread over the week
before, straight into ClickHouse: every flush's duplicate lookup then reads the prompts'
stored events in its window, as in a warehouse that has been running for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from bench.worker_services import bench_settings
from promptline.clickhouse import connect
from promptline.commands.migrate import run_migrations
from promptline.commands.stack import local_env
from promptline.kafka import create_consumer, create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import AnalyticsRecord, RecordBase, SignalRecord, UsageRecord
from workers.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
HISTORY_CHUNK = 1_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def records(count: int) -> list[RecordBase]:
    """The benchmark's events, with a retry (same idempotency key) every twentieth."""
    org, project = uuid.uuid4(), uuid.uuid4()
    prompts = [uuid.uuid4() for _ in range(12)]
    start = datetime.now(UTC) - timedelta(hours=6)
    made: list[RecordBase] = []
    for n in range(count):
        prompt = prompts[n % len(prompts)]
        common = {
            "event_id": uuid.uuid4(),
            "received_at": start + timedelta(milliseconds=n),
            "org_id": org,
            "project_id": project,
            "prompt_id": prompt,
        }
        kind = n % 10
        record: RecordBase
        if kind == 8:
            record = SignalRecord(
                **common, signal_id=n, value="positive", metadata={"version": 1 + n % 3}
            )
        elif kind == 9:
            record = UsageRecord(
                **common,
                prompt_name="p",
                version=1 + n % 3,
                version_hash=f"sha256:{n % 3:064d}",
                trace_id=uuid.uuid4(),
            )
        elif n % 20 == 1 and made:
            previous = made[-1]
            record = (
                previous.model_copy(update={"event_id": uuid.uuid4()})
                if isinstance(previous, AnalyticsRecord)
                else AnalyticsRecord(**common, version_hash="sha256:x", latency_ms=float(n))
            )
        else:
            record = AnalyticsRecord(
                **common,
                version_hash=f"sha256:{n % 3:064d}",
                latency_ms=float(50 + n % 900),
                cost_usd=(n % 64) / 1024,
                score=(n % 9) / 8,
                idempotency_key=f"k{n}" if n % 20 == 0 else None,
            )
        made.append(record)
    return made


def topic_of(settings: Settings, record: RecordBase) -> str:
    kind = {AnalyticsRecord: EventKind.ANALYTICS, SignalRecord: EventKind.SIGNAL}.get(
        type(record), EventKind.USAGE
    )
    return topic_name(settings.kafka_topic_prefix, kind)


async def load(settings: Settings, batch: list[RecordBase]) -> float:
    """Produce everything; returns the seconds it took."""
    producer = create_producer(settings.model_copy(update={"kafka_linger_ms": 20}))
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for record in batch:
            key = str(getattr(record, "prompt_id")).encode()  # noqa: B009
            pending.append(await producer.send(topic_of(settings, record), record.to_bytes(), key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def committed(settings: Settings, admin: AIOKafkaAdminClient) -> int:
    tps = [
        TopicPartition(topic_name(settings.kafka_topic_prefix, kind), partition)
        for kind in EventKind
        for partition in range(settings.kafka_topic_partitions)
    ]
    offsets = await admin.list_consumer_group_offsets(settings.kafka_consumer_group, partitions=tps)
    return sum(max(0, meta.offset) for meta in offsets.values())


async def stored_rows(settings: Settings) -> int:
    client = await connect(settings)
    try:
        total = 0
        for table in ("analytics_events", "signal_events", "usage_links"):
            total += int((await client.query(f"SELECT count() FROM {table}")).result_rows[0][0])
        return total
    finally:
        await client.close()


async def store_history(settings: Settings, batch: list[RecordBase], count: int) -> float:
    """``count`` analytics events of the batch's prompts over the week before; seconds."""
    first = batch[0]
    prompts = sorted({str(getattr(record, "prompt_id")) for record in batch})  # noqa: B009
    until = int(first.received_at.timestamp() * 1000)
    week = 7 * 86_400_000
    client = await connect(settings)
    started = time.perf_counter()
    try:
        for offset in range(0, count, HISTORY_CHUNK):
            rows = min(HISTORY_CHUNK, count - offset)
            await client.command(
                "INSERT INTO analytics_events (event_id, received_at, org_id, project_id,"
                " prompt_id, version_hash, latency_ms, cost_usd, score, dedup_key,"
                " kafka_partition, kafka_offset, kafka_block_first, kafka_block_last)"
                " SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(toInt64({until:Int64}"
                f" - {week} + intDiv(number * {week}, {count})), 'UTC'), {{org:UUID}},"
                " {project:UUID}, toUUID({prompts:Array(String)}[1 + number % length("
                "{prompts:Array(String)})]), concat('sha256:', toString(number % 3)),"
                " 50 + number % 900, 0.001, 0.5, concat('history-', toString(number)),"
                f" 0, number, number, number FROM numbers({offset}, {rows})",
                parameters={
                    "until": until,
                    "org": first.org_id,
                    "project": first.project_id,
                    "prompts": prompts,
                },
            )
    finally:
        await client.close()
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User and system CPU a running process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


BARE_TABLES: dict[str, type[BaseModel]] = {
    "analytics_events": AnalyticsRecord,
    "signal_events": SignalRecord,
    "usage_links": UsageRecord,
}


async def bare_loop(settings: Settings, events: int) -> tuple[float, float]:
    """The bare loop over the same topics; (seconds from its first stored block, CPU seconds)."""
    client = await connect(settings)
    specs = {spec.table: spec for spec in TABLES.values()}
    columns: dict[str, list[str]] = {}
    for table, model in BARE_TABLES.items():
        await client.command(f"CREATE TABLE bare_{table} AS {table}")
        fields = set(model.model_fields) - {"metadata"}
        columns[table] = [
            *(name for name in specs[table].columns if name in fields),
            "dedup_key",
            "kafka_partition",
            "kafka_offset",
        ]
    tables = {
        topic_name(settings.kafka_topic_prefix, spec.kind): spec.table
        for spec in specs.values()
        if spec.table in BARE_TABLES
    }
    consumer = create_consumer(settings, list(tables), f"{settings.kafka_consumer_group}-bare")
    await consumer.start()
    loads, parse_time = orjson.loads, datetime.fromisoformat
    consumed = 0
    first_stored: float | None = None
    cpu_at_first = 0.0
    try:
        while consumed < events:
            batch: dict[str, list[list[Any]]] = {table: [] for table in BARE_TABLES}
            offsets: dict[TopicPartition, int] = {}
            taken = 0
            while taken < settings.worker_batch_max_rows and consumed + taken < events:
                fetched = await consumer.getmany(
                    timeout_ms=200, max_records=settings.worker_batch_max_rows - taken
                )
                if not fetched:
                    break
                for tp, messages in fetched.items():
                    table = tables[tp.topic]
                    names = columns[table][:-3]
                    rows = batch[table]
                    for message in messages:
                        data = loads(message.value)
                        row = [data.get(name) for name in names]
                        row[1] = parse_time(row[1])
                        row += [
                            data.get("idempotency_key") or data["event_id"],
                            tp.partition,
                            message.offset,
                        ]
                        rows.append(row)
                    taken += len(messages)
                    offsets[tp] = messages[-1].offset + 1
            for table, rows in batch.items():
                if rows:
                    await client.insert(f"bare_{table}", rows, column_names=columns[table])
            if offsets:
                await consumer.commit(offsets)
            consumed += taken
            if first_stored is None and taken:
                first_stored, cpu_at_first = time.perf_counter(), self_cpu()
        done, cpu_done = time.perf_counter(), self_cpu()
    finally:
        await consumer.stop()
        await client.close()
    return done - (first_stored or done), cpu_done - cpu_at_first


async def run(settings: Settings, events: int, workers: int, history: int) -> None:
    await run_migrations(settings, ("clickhouse", "kafka"))
    batch = records(events)
    if history:
        seconds = await store_history(settings, batch, history)
        print(f"stored {history:,} earlier analytics events of the same prompts in {seconds:.1f}s")
    stored_before = await stored_rows(settings)
    produce_seconds = await load(settings, batch)
    print(f"loaded {events} records into Kafka in {produce_seconds:.1f}s")
    env = {**os.environ, **local_env(settings)}
    children_before = children_cpu()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "promptline",
            "worker",
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    started = time.perf_counter()
    first_row: float | None = None
    cpu_at_first = 0.0
    try:
        while await committed(settings, admin) < events:
            if first_row is None and await stored_rows(settings) > stored_before:
                first_row = time.perf_counter()
                cpu_at_first = sum(cpu_seconds(process.pid) for process in processes)
            await asyncio.sleep(0.1)
        done = time.perf_counter()
        cpu_done = sum(cpu_seconds(process.pid) for process in processes)
    finally:
        await admin.close()
        for process in processes:
            process.terminate()
            await process.wait()
    lifetime_cpu = children_cpu() - children_before
    first_row = first_row or done
    rows = await stored_rows(settings) - stored_before
    worker_rate = events / max(done - first_row, 1e-9)
    print(f"workers: {workers}, partitions per topic: {settings.kafka_topic_partitions}")
    print(f"batch: {settings.worker_batch_max_rows} rows or {settings.worker_batch_max_seconds}s")
    print(f"group join and first insert: {first_row - started:.1f}s")
    print(f"stored {rows} rows ({events - rows} duplicates dropped) in {done - first_row:.1f}s")
    print(f"throughput: {worker_rate:,.0f} events/s")
    print(
        f"worker CPU: {(cpu_done - cpu_at_first) / events * 1e6:.1f} us/event"
        f" (whole life, start-up and join included: {lifetime_cpu / events * 1e6:.1f})"
    )
    bare_seconds, bare_cpu = await bare_loop(settings, events)
    bare_rate = events / max(bare_seconds, 1e-9)
    print(
        f"bare loop (consume, orjson, insert, commit): {bare_rate:,.0f} events/s,"
        f" CPU {bare_cpu / events * 1e6:.1f} us/event"
    )
    print(f"worker / bare: {worker_rate / bare_rate:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--stored", type=int, default=0, help="analytics events already stored (the week before)"
    )
    parser.add_argument("--use-env", action="store_true", help="use PROMPTLINE_* services")
    args = parser.parse_args()
    with bench_settings(
        args.use_env,
        worker_batch_max_rows=args.batch_rows,
        kafka_topic_partitions=args.partitions,
    ) as settings:
        asyncio.run(run(settings, args.events, args.workers, args.stored))


if __name__ == "__main__":
    main()
