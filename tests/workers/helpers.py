"""Shared by the worker and compare tests: records, producing them, worker processes, queries."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Any, Literal

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from promptline.clickhouse import connect
from promptline.devstack.stack import local_env
from promptline.kafka import create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from schemas.records import (
    AnalyticsRecord,
    ExposureRecord,
    RecordBase,
    SignalRecord,
    UsageRecord,
)
from workers.service import assemble_worker
from workers.sink import ClickHouseSink
from workers.tables import TABLES

ROOT = Path(__file__).resolve().parents[2]


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def millis(moment: datetime | None = None) -> datetime:
    """A UTC time with millisecond precision, as the edge stamps events."""
    moment = moment or datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class Tenant:
    """One project's ids, for records made in tests."""

    org_id: uuid.UUID = field(default_factory=new_id)
    project_id: uuid.UUID = field(default_factory=new_id)


def analytics(
    tenant: Tenant,
    prompt_id: uuid.UUID,
    version_hash: str,
    *,
    latency: float | None = None,
    cost: float | None = None,
    score: float | None = None,
    key: str | None = None,
    at: datetime | None = None,
) -> AnalyticsRecord:
    return AnalyticsRecord(
        event_id=uuid.uuid4(),
        received_at=millis(at),
        org_id=tenant.org_id,
        project_id=tenant.project_id,
        prompt_id=prompt_id,
        version_hash=version_hash,
        latency_ms=latency,
        cost_usd=cost,
        score=score,
        idempotency_key=key,
    )


def signal(
    tenant: Tenant,
    prompt_id: uuid.UUID,
    value: Literal["positive", "negative"],
    *,
    metadata: dict[str, Any] | None = None,
    key: str | None = None,
    at: datetime | None = None,
) -> SignalRecord:
    return SignalRecord(
        event_id=uuid.uuid4(),
        received_at=millis(at),
        org_id=tenant.org_id,
        project_id=tenant.project_id,
        signal_id=int(time.time_ns() % 2**62),
        prompt_id=prompt_id,
        value=value,
        metadata=metadata,
        idempotency_key=key,
    )


def usage(
    tenant: Tenant,
    prompt_id: uuid.UUID,
    version: int,
    version_hash: str,
    trace_id: uuid.UUID,
    *,
    span_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> UsageRecord:
    return UsageRecord(
        event_id=uuid.uuid4(),
        received_at=millis(at),
        org_id=tenant.org_id,
        project_id=tenant.project_id,
        prompt_id=prompt_id,
        prompt_name="p",
        version=version,
        version_hash=version_hash,
        trace_id=trace_id,
        span_id=span_id,
    )


def exposure(
    tenant: Tenant,
    prompt_id: uuid.UUID,
    version: int,
    unit_id: str,
    *,
    key: str | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> ExposureRecord:
    """An exposure decided by a split (``by_split``, ``rule``, ``deployment_id``, ... in
    ``fields`` say otherwise)."""
    given = {"version_hash": "sha256:" + "0" * 64, "rule": "canary", "by_split": True, **fields}
    return ExposureRecord.model_validate(
        {
            "event_id": uuid.uuid4(),
            "received_at": millis(at),
            "org_id": tenant.org_id,
            "project_id": tenant.project_id,
            "prompt_id": prompt_id,
            "version": version,
            "unit_id": unit_id,
            "source": "resolve",
            "idempotency_key": key,
            **given,
        }
    )


KIND_OF = {
    AnalyticsRecord: EventKind.ANALYTICS,
    SignalRecord: EventKind.SIGNAL,
    ExposureRecord: EventKind.EXPOSURE,
}


def topic_of(settings: Settings, record: RecordBase) -> str:
    kind = KIND_OF.get(type(record), EventKind.USAGE)
    return topic_name(settings.kafka_topic_prefix, kind)


async def produce(
    settings: Settings,
    records: Sequence[RecordBase | tuple[str, bytes, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send records (or raw ``(topic, key, value)`` triples), keyed by prompt, and wait."""
    producer = create_producer(settings)
    await producer.start()
    try:
        deliveries = []
        for item in records:
            if isinstance(item, tuple):
                topic, key, value = item
            else:
                topic = topic_of(settings, item)
                key = str(getattr(item, "prompt_id")).encode()  # noqa: B009
                value = item.to_bytes()
            deliveries.append(
                await producer.send(topic, value=value, key=key, headers=headers or [])
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def query(settings: Settings, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = await connect(settings)
    try:
        result = await client.query(sql, parameters=parameters)
        return [tuple(row) for row in result.result_rows]
    finally:
        await client.close()


async def scalar(settings: Settings, sql: str, **parameters: Any) -> Any:
    """The first value of the first row."""
    return (await query(settings, sql, **parameters))[0][0]


async def table_engines(settings: Settings) -> dict[str, str]:
    """Each table of the test's database and its engine, as ClickHouse prints it (TTL too)."""
    rows = await query(
        settings,
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        db=settings.clickhouse_database,
    )
    return {str(name): str(engine) for name, engine in rows}


async def command(settings: Settings, sql: str) -> None:
    client = await connect(settings)
    try:
        await client.command(sql)
    finally:
        await client.close()


async def wait_until(
    probe: Callable[[], Any], what: str, within: float = 90.0, every: float = 0.25
) -> Any:
    """Await ``probe()`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"{what} not reached in {within}s; last: {last!r}")


async def committed_offsets(settings: Settings, kinds: Sequence[EventKind]) -> dict[str, int]:
    """Sum of the group's committed offsets per topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        tps = [
            TopicPartition(topic_name(settings.kafka_topic_prefix, kind), partition)
            for kind in kinds
            for partition in range(settings.kafka_topic_partitions)
        ]
        offsets = await admin.list_consumer_group_offsets(
            settings.kafka_consumer_group, partitions=tps
        )
        totals: dict[str, int] = {}
        for tp, meta in offsets.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + max(0, meta.offset)
        return totals
    finally:
        await admin.close()


class WorkerProcess:
    """``promptline worker`` as a child process with the test's settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self._settings = settings
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, **local_env(self._settings), "PYTHONUNBUFFERED": "1"}
        log = self._log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "promptline",
                "worker",
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log.close()

    async def kill(self) -> None:
        """SIGKILL: no flush, no commit, no leaving the group."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]


async def cli(settings: Settings, *args: str) -> str:
    """Run ``promptline <args>`` with the test's settings; its stdout, or fail with stderr."""
    env = {**os.environ, **local_env(settings)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "promptline",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


class Fleet:
    """Worker processes started by one test, all stopped when it ends, whatever happens."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self._settings = settings
        self._folder = folder
        self.started: list[WorkerProcess] = []

    async def start(self) -> WorkerProcess:
        worker = WorkerProcess(self._settings, self._folder / f"worker-{len(self.started)}.log")
        self.started.append(worker)
        await worker.start()
        return worker


@contextlib.asynccontextmanager
async def fleet(settings: Settings, folder: Path) -> AsyncIterator[Fleet]:
    workers = Fleet(settings, folder)
    try:
        yield workers
    finally:
        for worker in workers.started:
            await worker.stop()


class SimulatedCrash(BaseException):
    """Raised where a worker process would have died."""


@contextlib.asynccontextmanager
async def in_process_worker(
    settings: Settings,
    consumer_type: type[Any] | None = None,
    specs: dict[EventKind, Any] | None = None,
    sink_type: type[Any] | None = None,
) -> AsyncIterator[tuple[Any, asyncio.Task[None], asyncio.Event]]:
    """A worker built as ``promptline worker`` builds it, running in this event loop."""

    sink = (sink_type or ClickHouseSink)(await connect(settings))
    parts = assemble_worker(settings, sink, {**TABLES, **(specs or {})})
    if consumer_type is not None:
        parts.consumer.__class__ = consumer_type
    worker = parts.worker
    await parts.start()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker, task, stop
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)
        await parts.stop()
        await sink.close()
