"""Ingestion edge benchmark: accepted events/s and latency, beside a bare aiokafka producer.

``python -m bench.edge_load [--events N] [--seconds S]``

Starts a broker (the local stack's, ``promptline.devstack.services``), migrates a fresh
store in a temporary folder, runs ``promptline serve`` as a subprocess, and drives it
from a separate load-generator process (``bench.edge_loadgen``) on loopback: single
analytics events, single signals, and batches of 100 analytics events. Then, against the
same broker in the same run, it measures a bare ``AIOKafkaProducer`` with the edge's
settings (acks=all, linger, lz4): one awaited send per task from as many tasks as the
load generator has connections, and everything sent first then awaited together. Every
scenario is bounded by an event count and a time limit. The table gives each scenario's
rate as a fraction of both bare rates (the edge's cost over the broker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.figures import add_json_option, figure, write_json
from controlplane.authoring import push_numbered_version
from controlplane.store.engine import create_engine, session_factory
from controlplane.tenancy import create_api_key, create_organization, create_project
from promptline.commands.migrate import run_migrations
from promptline.commands.stack import local_env
from promptline.devstack.services import (
    free_port,
    http_ok,
    running,
    running_broker,
)
from promptline.kafka import create_producer
from promptline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
UNLIMITED = "1000000/second"


async def seed(settings: Settings) -> dict[str, Any]:
    """Store and topics, then a business organisation without request-rate limits."""
    await run_migrations(settings, ("store", "kafka"))
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            org = await create_organization(session, "bench", "business")
            org.limit_overrides = {
                "signals_per_month": 100_000_000,
                "POST /api/v1/prompts/analytics": UNLIMITED,
                "POST /api/v1/prompts/:prompt_id/signals": UNLIMITED,
                "POST /api/v1/events/batch": UNLIMITED,
            }
            project = await create_project(session, org.id, "bench")
            prompt, version = await push_numbered_version(
                session, project.id, "bench-prompt", 1, "You are a benchmark."
            )
            key = await create_api_key(session, project.id, ["ingest"], "bench")
            return {
                "api_key": key.secret,
                "prompt_id": str(prompt.id),
                "prompt_name": prompt.name,
                "version_hash": version.content_hash,
            }
    finally:
        await engine.dispose()


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator process once; its measurements."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.edge_loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=spec["seconds"] + 120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def bare_producer(
    settings: Settings, events: int, seconds: float, tasks: int
) -> dict[str, float]:
    """Records/s of a bare producer with the edge's settings, two ways."""
    producer: AIOKafkaProducer = create_producer(settings)
    await producer.start()
    topic = settings.kafka_topic_prefix + "analytics.v1"
    value = b'{"v":1,"kind":"analytics","event_id":"01a209dc-6581-7080-aa42-8682f782cdca",' + (
        b'"payload":"' + b"x" * 260 + b'"}'
    )
    key = b"b4f1d1a2-7d1c-4f7e-9f6e-3d7c1e2a9b10"
    try:
        await (await producer.send(topic, value=value, key=key))  # metadata, connections
        sent = 0
        deadline = time.perf_counter() + seconds

        async def one_at_a_time() -> None:
            nonlocal sent
            while sent < events and time.perf_counter() < deadline:
                sent += 1
                await (await producer.send(topic, value=value, key=key))

        began = time.perf_counter()
        await asyncio.gather(*(one_at_a_time() for _ in range(tasks)))
        awaited_rate = sent / (time.perf_counter() - began)

        began = time.perf_counter()
        deliveries = []
        count = 0
        while count < events and time.perf_counter() < deadline + seconds:
            deliveries.append(await producer.send(topic, value=value, key=key))
            count += 1
        await asyncio.gather(*deliveries)
        pipelined_rate = count / (time.perf_counter() - began)
    finally:
        await producer.stop()
    return {"awaited_per_task": awaited_rate, "pipelined": pipelined_rate}


def main() -> None:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.edge_load", description=__doc__)
    parser.add_argument("--events", type=int, default=30_000, help="events per scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per scenario")
    parser.add_argument("--concurrency", type=int, default=64, help="connections for singles")
    add_json_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="promptline-bench-") as folder:
        work = Path(folder)
        broker_port, http_port = free_port(), free_port()
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
            kafka_topic_prefix="bench.",
            kafka_enable_idempotence=False,  # the local broker lacks it
            database_url=f"sqlite+aiosqlite:///{work / 'control.db'}",
            listen_port=http_port,
            log_level="WARNING",
            log_format="text",
            state_dir=work / "state",
        )
        with running_broker(broker_port, work / "broker.log"):
            demo = asyncio.run(seed(settings))
            serve = [sys.executable, "-m", "promptline", "serve"]
            env = {**local_env(settings), "PYTHONPATH": str(ROOT)}
            with running(
                serve,
                work / "serve.log",
                ready=lambda: http_ok(f"{settings.base_url}/healthz"),
                what="edge",
                env=env,
            ):
                base = {**demo, "url": settings.base_url, "seconds": args.seconds, "batch": 1}
                scenarios = {
                    "single analytics events": {
                        **base, "mode": "analytics", "events": args.events,
                        "concurrency": args.concurrency,
                    },
                    "single signals": {
                        **base, "mode": "signal", "events": args.events,
                        "concurrency": args.concurrency,
                    },
                    "batches of 100 analytics": {
                        **base, "mode": "batch", "batch": 100, "events": args.events * 5,
                        "concurrency": 8,
                    },
                }  # fmt: skip
                results = {name: load(spec) for name, spec in scenarios.items()}
            bare = asyncio.run(
                bare_producer(settings, args.events * 5, args.seconds, args.concurrency)
            )
    for line in table(results, bare):
        print(line)
    print(f"({os.cpu_count()} CPUs; broker, edge and load generator on one machine, loopback)")
    write_json(
        args.json,
        "edge_load",
        [
            figure(
                f"{name} vs bare producer ({'pipelined' if 'batch' in name else 'awaited'})",
                result["events_per_second"],
                "events/s",
                bare["pipelined" if "batch" in name else "awaited_per_task"],
            )
            for name, result in results.items()
        ]
        + [figure(f"{name} p99", result["p99_ms"], "ms") for name, result in results.items()],
    )


def table(results: dict[str, dict[str, Any]], bare: dict[str, float]) -> list[str]:
    """The printed table: each scenario, and its rate as a fraction of the bare producer's.

    ``/awaited`` compares with one awaited send per task (what a single-event route does
    per request), ``/pipelined`` with everything sent first (what a batch does); 1.00
    would mean the edge costs nothing over the broker.
    """
    lines = [
        f"{'scenario':<28}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'/awaited':>10}{'/pipelined':>11}"
    ]
    for name, result in results.items():
        rate = result["events_per_second"]
        lines.append(
            f"{name:<28}{rate:>12.0f}{result['p50_ms']:>10.2f}{result['p99_ms']:>10.2f}"
            f"{result['errors']:>8d}{_ratio(rate, bare['awaited_per_task']):>10}"
            f"{_ratio(rate, bare['pipelined']):>11}"
        )
    lines.append(f"{'bare producer, 1 await/task':<28}{bare['awaited_per_task']:>12.0f}")
    lines.append(f"{'bare producer, pipelined':<28}{bare['pipelined']:>12.0f}")
    return lines


def _ratio(rate: float, bare: float) -> str:
    return f"{rate / bare:.2f}" if bare > 0 else "n/a"


if __name__ == "__main__":
    main()
