"""Worker benchmark: events/s from Kafka into ClickHouse, through the whole flush protocol.

``python -m bench.worker_throughput [--events N] [--batch-rows R] [--workers W] [--stored S]
[--use-env] [--json PATH]``

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
before, straight into ClickHouse (their keys too, through the views): every flush's
duplicate lookup then runs against the stored keys in its window, as in a warehouse that
has been running for a while (``bench.worker_dedup`` compares that with an empty one in one
run). Event ids are UUIDv7, as the edge makes them. The load average is printed before
and after. With the local services, their CPU per event over the same spans is printed too
(the ClickHouse server's and the broker's, from ``/proc``), and the events/s the machine's
cores could give at the worker's and the services' CPU per event together: a ceiling no
worker passes on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel
from uuid_utils.compat import uuid7

from bench.figures import Figure, add_json_option, figure, write_json
from bench.worker_services import bench_settings, local_service_pids
from promptline.clickhouse import connect
from promptline.commands.migrate import run_migrations
from promptline.devstack.stack import local_env
from promptline.kafka import create_consumer, create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import AnalyticsRecord, RecordBase, SignalRecord, UsageRecord
from workers.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
HISTORY_CHUNK = 1_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def zipf_shares(prompts: int) -> list[float]:
    """Each prompt's share of the traffic: the k-th busiest gets 1/k of the first's."""
    weights = [1 / rank for rank in range(1, prompts + 1)]
    return [weight / sum(weights) for weight in weights]


def records(count: int, prompts: int = 12, zipf: bool = False) -> list[RecordBase]:
    """The benchmark's events, with a retry (same idempotency key) every twentieth; spread
    evenly over ``prompts``, or with Zipf's shares. Event ids are UUIDv7, as the edge's."""
    org, project = uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(prompts)]
    chooser = random.Random(7)
    order = (
        chooser.choices(ids, zipf_shares(prompts), k=count)
        if zipf
        else [ids[n % prompts] for n in range(count)]
    )
    start = datetime.now(UTC) - timedelta(hours=6)
    made: list[RecordBase] = []
    for n in range(count):
        prompt = order[n]
        common = {
            "event_id": uuid7(),
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
                previous.model_copy(update={"event_id": uuid7()})
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
    """``count`` analytics events of the batch's prompts over the week before; seconds.

    The prompts get Zipf's shares (the k-th busiest 1/k of the first's), ordered by their
    traffic in the batch. Keys are what the edge makes: a UUIDv7 event id of the event's
    time, and one in twenty a client's idempotency key (``k`` and a number, among which the
    batch's own keys fall).
    """
    first = batch[0]
    traffic = Counter(str(getattr(record, "prompt_id")) for record in batch)  # noqa: B009
    prompts = [prompt for prompt, _count in traffic.most_common()]
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
                f" WITH toInt64({{until:Int64}} - {week} + intDiv(number * {week}, {count}))"
                " AS ms, length({prompts:Array(String)}) AS n,"
                " least(n, toUInt32(pow(n + 1, (number * 0.6180339887498949) % 1))) AS rank,"
                " lower(leftPad(hex(ms), 12, '0')) AS time_hex,"
                " toString(generateUUIDv4(number)) AS random_text"
                " SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(ms, 'UTC'),"
                " {org:UUID}, {project:UUID}, toUUID({prompts:Array(String)}[rank]),"
                " concat('sha256:', toString(number % 3)), 50 + number % 900, 0.001, 0.5,"
                " if(number % 20 = 0, concat('k', toString(cityHash64(number) % 1000000000)),"
                " concat(substring(time_hex, 1, 8), '-', substring(time_hex, 9, 4), '-7',"
                " substring(random_text, 16))),"
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


def services_cpu(pids: dict[str, int]) -> dict[str, float]:
    """Each local service's CPU so far, by name (``local_service_pids``)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each service used between two ``services_cpu`` readings."""
    return {name: after[name] - before[name] for name in before if name in after}


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


async def bare_loop(settings: Settings, events: int) -> tuple[float, float, dict[str, float]]:
    """The bare loop over the same topics: seconds from its first stored block, its CPU
    seconds, and the local services' CPU seconds over the same span."""
    pids = local_service_pids(settings)
    services_at_first: dict[str, float] = {}
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
                services_at_first = services_cpu(pids)
        done, cpu_done = time.perf_counter(), self_cpu()
        services_done = services_cpu(pids)
    finally:
        await consumer.stop()
        await client.close()
    return (
        done - (first_stored or done),
        cpu_done - cpu_at_first,
        cpu_since(services_at_first or services_done, services_done),
    )


@dataclass(frozen=True, slots=True)
class WorkerRun:
    """What the worker processes did with the batch: from the first stored row to the last
    commit, and the CPU they used over that span."""

    events: int
    rows: int
    join_seconds: float
    seconds: float
    cpu_seconds: float
    lifetime_cpu_seconds: float
    service_cpu_seconds: dict[str, float]

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / max(self.seconds, 1e-9)

    @property
    def cpu_us(self) -> float:
        """Worker CPU per event, in microseconds."""
        return self.cpu_seconds / self.events * 1e6

    def service_cpu_us(self) -> dict[str, float]:
        """Each local service's CPU per event over the same span, in microseconds."""
        return {name: cpu / self.events * 1e6 for name, cpu in self.service_cpu_seconds.items()}


async def time_workers(settings: Settings, events: int, workers: int) -> WorkerRun:
    """Start ``workers`` processes on what Kafka holds and time them until all is committed."""
    stored_before = await stored_rows(settings)
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
    pids = local_service_pids(settings)
    services_at_first: dict[str, float] = {}
    try:
        while await committed(settings, admin) < events:
            if first_row is None and await stored_rows(settings) > stored_before:
                first_row = time.perf_counter()
                cpu_at_first = sum(cpu_seconds(process.pid) for process in processes)
                services_at_first = services_cpu(pids)
            await asyncio.sleep(0.1)
        done = time.perf_counter()
        cpu_done = sum(cpu_seconds(process.pid) for process in processes)
        services_done = services_cpu(pids)
    finally:
        await admin.close()
        for process in processes:
            process.terminate()
            await process.wait()
    first_row = first_row or done
    return WorkerRun(
        events=events,
        rows=await stored_rows(settings) - stored_before,
        join_seconds=first_row - started,
        seconds=done - first_row,
        cpu_seconds=cpu_done - cpu_at_first,
        lifetime_cpu_seconds=children_cpu() - children_before,
        service_cpu_seconds=cpu_since(services_at_first or services_done, services_done),
    )


def print_run(settings: Settings, workers: int, run: WorkerRun) -> None:
    """The worker run's figures, one per line (``bench.report`` reads these lines)."""
    print(f"workers: {workers}, partitions per topic: {settings.kafka_topic_partitions}")
    print(f"batch: {settings.worker_batch_max_rows} rows or {settings.worker_batch_max_seconds}s")
    print(f"group join and first insert: {run.join_seconds:.1f}s")
    print(
        f"stored {run.rows} rows ({run.events - run.rows} duplicates dropped) in {run.seconds:.1f}s"
    )
    print(f"throughput: {run.rate:,.0f} events/s")
    print(
        f"worker CPU: {run.cpu_us:.1f} us/event (whole life, start-up and join included:"
        f" {run.lifetime_cpu_seconds / run.events * 1e6:.1f})"
    )


def print_ceiling(worker: WorkerRun, bare_services: dict[str, float]) -> list[Figure]:
    """The local services' CPU per event beside the worker's, and the events/s this machine's
    cores could give at that CPU per event if every process kept busy in parallel: a ceiling
    neither the worker nor the bare loop can pass here, whatever the worker does. Returns the
    services' figures for ``--json``."""
    services = worker.service_cpu_us()
    if not services:
        return []
    figures = []
    for name, us in services.items():
        bare_us = bare_services.get(name, 0.0) / worker.events * 1e6
        print(f"{name} CPU: {us:.1f} us/event (bare loop: {bare_us:.1f})")
        figures.append(figure(f"{name} CPU per event vs bare loop", us, "us", bare_us))
    total = worker.cpu_us + sum(services.values())
    cores = len(os.sched_getaffinity(0))
    print(
        f"all CPU per event, worker and services: {total:.1f} us: at most"
        f" {cores / total * 1e6:,.0f} events/s on this machine's {cores} cores"
    )
    return figures


def load_average() -> str:
    """The machine's load averages (1, 5, 15 minutes): others' work shows in every figure."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def run(
    settings: Settings, events: int, workers: int, history: int, json_path: Path | None
) -> None:
    print(f"load average: {load_average()}")
    await run_migrations(settings, ("clickhouse", "kafka"))
    batch = records(events)
    if history:
        seconds = await store_history(settings, batch, history)
        print(f"stored {history:,} earlier analytics events of the same prompts in {seconds:.1f}s")
    produce_seconds = await load(settings, batch)
    print(f"loaded {events} records into Kafka in {produce_seconds:.1f}s")
    worker = await time_workers(settings, events, workers)
    print_run(settings, workers, worker)
    bare_seconds, bare_cpu, bare_services = await bare_loop(settings, events)
    bare_rate = events / max(bare_seconds, 1e-9)
    bare_cpu_us = bare_cpu / events * 1e6
    print(
        f"bare loop (consume, orjson, insert, commit): {bare_rate:,.0f} events/s,"
        f" CPU {bare_cpu_us:.1f} us/event"
    )
    print(f"worker / bare: {worker.rate / bare_rate:.0%}")
    services = print_ceiling(worker, bare_services)
    print(f"load average: {load_average()}")
    write_json(
        json_path,
        "worker_throughput",
        [
            figure("worker events/s vs bare loop", worker.rate, "events/s", bare_rate),
            figure("worker CPU per event vs bare loop", worker.cpu_us, "us", bare_cpu_us),
            *services,
        ],
    )


def worker_options(prog: str, stored: int) -> argparse.ArgumentParser:
    """The options the worker benchmarks share: sizes, services and ``--json``."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--stored",
        type=int,
        default=stored,
        help="analytics events already stored (the week before)",
    )
    parser.add_argument("--use-env", action="store_true", help="use PROMPTLINE_* services")
    add_json_option(parser)
    return parser


def worker_settings(args: argparse.Namespace) -> contextlib.AbstractContextManager[Settings]:
    """The services and settings ``worker_options`` chose."""
    return bench_settings(
        args.use_env,
        worker_batch_max_rows=args.batch_rows,
        kafka_topic_partitions=args.partitions,
    )


def main() -> None:
    parser = worker_options("python -m bench.worker_throughput", stored=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with worker_settings(args) as settings:
        asyncio.run(run(settings, args.events, args.workers, args.stored, args.json))


if __name__ == "__main__":
    main()
