"""Ingestion edge benchmark: accepted events/s beside a bare handler and bare producers.

``python -m bench.edge_load [--rounds 2] [--duration 5] [--connections 256] [--compare-clients]``

Starts a broker (the local stack's, ``promptline.devstack.services``), migrates a fresh
store in a temporary folder, runs ``promptline serve`` as a subprocess and, beside it, a
bare aiohttp process whose only handler answers 204 to the analytics path. Then, round
after round, alternating so that a shared machine's load moves both sides of each ratio:

- **single analytics events**: wrk (one thread, ``--connections`` keep-alive connections,
  pinned to CPU 1 as ``bench.resolve_http`` does) against each edge, each time right beside
  a phase against the bare handler (before it, then after it in the next round; each
  server one process on CPU 0); the ratio is the edge's requests/s over the bare phase
  beside it, median of the rounds' ratios (the issue's goal: 60%);
- **batches of 100 analytics events** from the Python load generator (``bench.edge_loadgen``),
  then a bare producer of each Kafka client with the edge's settings (acks=all, linger,
  compression, the edge's record size) pipelining the same number of records to the same
  broker: events/s over the bare producer of the client the edge runs (the goal: 80%),
  and over each client's bare producer.

Single signals (load generator) and a bare aiokafka producer awaiting one send per task are
printed too, as before. ``--client`` picks the edge's Kafka client
(``PROMPTLINE_EDGE_KAFKA_CLIENT``, default the setting's); ``--compare-clients`` also runs an
edge on the other client, in the same rounds, so the two are compared under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from bench.figures import Figure, add_json_option, figure, write_json
from bench.resolve_http import (
    LOAD_CPU,
    SERVER_CPU,
    WRK_DONE,
    _compiled_tree,
    _cpu_seconds,
    _pinned,
    run_wrk,
)
from controlplane.authoring import push_numbered_version
from controlplane.store.engine import create_engine, session_factory
from controlplane.tenancy import create_api_key, create_organization, create_project
from promptline.commands.migrate import run_migrations
from promptline.devstack.services import (
    LOOPBACK,
    free_port,
    http_ok,
    running,
    running_broker,
)
from promptline.devstack.stack import local_env
from promptline.kafka import confluent_config, create_producer
from promptline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
UNLIMITED = "1000000/second"
ANALYTICS_PATH = "/api/v1/prompts/analytics"
CLIENTS = ("aiokafka", "confluent")
BUILDS = ("pure", "compiled")
SINGLE_GOAL, BATCH_GOAL = 0.60, 0.80
WARMUP_SECONDS = 2
VALUE = b'{"v":1,"kind":"analytics","event_id":"01a209dc-6581-7080-aa42-8682f782cdca",' + (
    b'"payload":"' + b"x" * 260 + b'"}'
)
"""A record about the size of the edge's analytics records."""
KEY = b"b4f1d1a2-7d1c-4f7e-9f6e-3d7c1e2a9b10"

# One wrk thread; every request a new idempotency key in the body.
WRK_SCRIPT = (
    """
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  counter = counter + 1
  local body = string.format(
    '{"prompt_id":"%(prompt)s","version_hash":"%(hash)s","latency_ms":412.5,'
    .. '"cost_usd":0.002,"idempotency_key":"%(tag)s-%%d"}', counter)
  return wrk.format(nil, "%(path)s", nil, body)
end
"""
    + WRK_DONE
)


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


async def bare_awaited(settings: Settings, events: int, seconds: float, tasks: int) -> float:
    """Records/s of a bare aiokafka producer, one awaited send per task at a time."""
    producer: AIOKafkaProducer = create_producer(settings)
    await producer.start()
    topic = settings.kafka_topic_prefix + "analytics.v1"
    try:
        await (await producer.send(topic, value=VALUE, key=KEY))  # metadata, connections
        sent = 0
        deadline = time.perf_counter() + seconds

        async def one_at_a_time() -> None:
            nonlocal sent
            while sent < events and time.perf_counter() < deadline:
                sent += 1
                await (await producer.send(topic, value=VALUE, key=KEY))

        began = time.perf_counter()
        await asyncio.gather(*(one_at_a_time() for _ in range(tasks)))
        return sent / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def bare_aiokafka_pipelined(settings: Settings, events: int, seconds: float) -> float:
    """Records/s of a bare aiokafka producer: every record sent first, then all awaited."""
    producer: AIOKafkaProducer = create_producer(settings)
    await producer.start()
    topic = settings.kafka_topic_prefix + "analytics.v1"
    try:
        await (await producer.send(topic, value=VALUE, key=KEY))
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()
        deliveries = []
        count = 0
        while count < events and time.perf_counter() < deadline:
            deliveries.append(await producer.send(topic, value=VALUE, key=KEY))
            count += 1
        await asyncio.gather(*deliveries)
        return count / (time.perf_counter() - began)
    finally:
        await producer.stop()


def bare_confluent_pipelined(settings: Settings, events: int, seconds: float) -> float:
    """Records/s of a bare confluent-kafka (librdkafka) producer, same settings, same way."""
    from confluent_kafka import Producer

    producer = Producer(confluent_config(settings))
    topic = settings.kafka_topic_prefix + "analytics.v1"
    delivered = failed = 0

    def counted(error: Any, _message: Any) -> None:
        nonlocal delivered, failed
        if error is None:
            delivered += 1
        else:
            failed += 1

    producer.produce(topic, value=VALUE, key=KEY)
    producer.flush(30)
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    count = 0
    while count < events and time.perf_counter() < deadline:
        try:
            producer.produce(topic, value=VALUE, key=KEY, on_delivery=counted)
            count += 1
        except BufferError:
            producer.poll(0.001)
        if count % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - began
    if failed:
        raise RuntimeError(f"bare confluent producer: {failed} records not delivered")
    return delivered / elapsed


def bare_pipelined(client: str, settings: Settings, events: int, seconds: float) -> float:
    """Records/s of ``client``'s bare producer, pipelining ``events`` records."""
    if client == "confluent":
        return bare_confluent_pipelined(settings, events, seconds)
    return asyncio.run(bare_aiokafka_pipelined(settings, events, seconds))


def serve_bare(port: int) -> None:
    """The baseline: one aiohttp handler answering 204 to the analytics path, nothing else."""

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(ANALYTICS_PATH, handler)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=LOOPBACK, port=port, access_log=None, print=None)


def _label(client: str, build: str) -> str:
    """An edge's name in the tables: its client, and its build unless pure Python."""
    return client if build == "pure" else f"{client}, compiled"


@contextlib.contextmanager
def _edge(work: Path, env: dict[str, str], client: str, build: str, port: int) -> Iterator[int]:
    """``promptline serve`` on ``port`` with ``client``, as ``build`` runs it; its pid.

    The compiled build is served from a copy of the tree compiled with mypyc (``-P``: not
    this tree's sources first), and refused unless its log says it runs compiled.
    """
    label = _label(client, build)
    command = [sys.executable, "-m", "promptline", "serve"]
    env = {**env, "PROMPTLINE_LISTEN_PORT": str(port), "PROMPTLINE_EDGE_KAFKA_CLIENT": client}
    env["PROMPTLINE_LOG_LEVEL"] = "INFO"  # its start-up line says which build it runs
    if build == "compiled":
        command = [sys.executable, "-P", "-m", "promptline", "serve"]
        tree = work / "compiled"
        env["PYTHONPATH"] = str(tree if tree.exists() else _compiled_tree(work))
    log = work / f"serve-{label.replace(', ', '-')}.log"
    url = f"http://{LOOPBACK}:{port}"
    with running(
        _pinned(SERVER_CPU, command),
        log,
        ready=lambda: http_ok(f"{url}/healthz"),
        what=f"edge ({label})",
        env=env,
    ) as edge:
        said = re.search(r"hot path runs ([^\"\n]+)", log.read_text())
        runs = said.group(1) if said else "(no line in its log)"
        if runs != {"pure": "pure Python", "compiled": "compiled"}[build]:
            raise RuntimeError(f"edge ({label}) runs {runs}: its figures would mislead")
        yield edge.pid


def wrk_phase(pid: int, port: int, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    """One timed wrk run against a server; refuses errors and non-2xx answers."""
    cpu_before, started = _cpu_seconds(pid), time.monotonic()
    summary, load_cpu = run_wrk(port, script, seconds, connections)
    wall = time.monotonic() - started
    server_seconds = _cpu_seconds(pid) - cpu_before
    if summary["non2xx"] or summary["socket_errors"]:
        raise RuntimeError(f"errors under load: {summary}")
    return {
        "requests_per_second": summary["requests"] / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "server_cpu": server_seconds / wall,
        "wrk_cpu": load_cpu / wall,
        "cpu_us_per_request": server_seconds / summary["requests"] * 1e6,
    }


def main() -> None:
    """Run every scenario, round after round, and print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.edge_load", description=__doc__)
    parser.add_argument("--events", type=int, default=30_000, help="events per scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per scenario")
    parser.add_argument("--concurrency", type=int, default=64, help="connections for signals")
    parser.add_argument("--connections", type=int, default=256, help="wrk's, single events")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk phase")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--client", choices=CLIENTS, default=None, help="the edge's client")
    parser.add_argument(
        "--compare-clients",
        action="store_true",
        help="also run an edge on the other Kafka client, in the same rounds",
    )
    parser.add_argument(
        "--build",
        choices=[*BUILDS, "both"],
        default="pure",
        help="serve the edge as this tree runs (pure Python), as the release build does "
        "(hot path compiled with mypyc, in a copy of the tree), or both in the same rounds",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="promptline-bench-") as folder:
        work = Path(folder)
        broker_port, http_port, bare_port = free_port(), free_port(), free_port()
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
            kafka_topic_prefix="bench.",
            kafka_enable_idempotence=False,  # the local broker lacks it
            database_url=f"sqlite+aiosqlite:///{work / 'control.db'}",
            listen_port=http_port,
            log_level="WARNING",
            log_format="text",
            state_dir=work / "state",
            **({"edge_kafka_client": args.client} if args.client else {}),
        )
        client = settings.edge_kafka_client
        with running_broker(broker_port, work / "broker.log"):
            demo = asyncio.run(seed(settings))
            script = work / "analytics.lua"
            script.write_text(
                WRK_SCRIPT
                % {
                    "key": demo["api_key"],
                    "prompt": demo["prompt_id"],
                    "hash": demo["version_hash"],
                    "tag": os.urandom(3).hex(),
                    "path": ANALYTICS_PATH,
                }
            )
            bare_command = _pinned(
                SERVER_CPU,
                [sys.executable, "-m", "bench.edge_load", "--serve-bare", str(bare_port)],
            )
            env = {**local_env(settings), "PYTHONPATH": str(ROOT)}
            clients = [client] + [c for c in CLIENTS if c != client and args.compare_clients]
            builds = list(BUILDS) if args.build == "both" else [args.build]
            edges = {_label(name, build): (name, build) for name in clients for build in builds}
            first = next(iter(edges))
            ports = {label: http_port if label == first else free_port() for label in edges}
            with contextlib.ExitStack() as stack:
                targets: dict[str, tuple[int, int]] = {}
                for label, (name, build) in edges.items():
                    targets[label] = (
                        stack.enter_context(_edge(work, env, name, build, ports[label])),
                        ports[label],
                    )
                bare_server = stack.enter_context(
                    running(
                        bare_command,
                        work / "bare.log",
                        ready=lambda: http_ok(f"http://{LOOPBACK}:{bare_port}/healthz"),
                        what="bare handler",
                        env=env,
                    )
                )
                targets["bare"] = (bare_server.pid, bare_port)
                for _pid, port in targets.values():
                    run_wrk(port, script, WARMUP_SECONDS, args.connections)
                singles: dict[str, list[dict[str, Any]]] = {target: [] for target in targets}
                bare_beside = {label: list[dict[str, Any]]() for label in edges}
                base = {**demo, "url": settings.base_url, "seconds": args.seconds, "batch": 1}
                batch_spec = {
                    **base, "mode": "batch", "batch": 100, "events": args.events * 5,
                    "concurrency": 8,
                }  # fmt: skip
                batches: dict[str, list[dict[str, Any]]] = {label: [] for label in edges}
                bare_rates: dict[str, list[float]] = {name: [] for name in CLIENTS}
                for round_number in range(args.rounds):
                    # Every other round the other way round, so a load that moves during a
                    # round moves both sides of each ratio alike.
                    flip = -1 if round_number % 2 else 1
                    for label in list(edges)[::flip]:  # each edge right beside a bare phase
                        for target in [label, "bare"][::flip]:
                            pid, port = targets[target]
                            phase = wrk_phase(pid, port, script, args.duration, args.connections)
                            singles[target].append(phase)
                            if target == "bare":
                                bare_beside[label].append(phase)
                    for label in list(edges)[::flip]:
                        url = f"http://{LOOPBACK}:{ports[label]}"
                        batches[label].append(load({**batch_spec, "url": url}))
                    for name in CLIENTS[::flip]:
                        bare_rates[name].append(
                            bare_pipelined(name, settings, args.events * 5, args.seconds)
                        )
                    print(f"round {round_number + 1} done", file=sys.stderr, flush=True)
                signals = load(
                    {
                        **base, "mode": "signal", "events": args.events,
                        "concurrency": args.concurrency,
                    }
                )  # fmt: skip
            awaited = asyncio.run(
                bare_awaited(settings, args.events * 5, args.seconds, args.concurrency)
            )
    load_after = Path("/proc/loadavg").read_text().strip()
    figures: list[Figure] = []
    for label, (name, _build) in edges.items():
        paired = {"edge": singles[label], "bare": bare_beside[label]}
        suffix = "" if label == first else f" ({label} edge)"
        figures += report(paired, batches[label], bare_rates, name, args, suffix)
    results = {"single signals": signals, "batches of 100 analytics": batches[first][-1]}
    for line in table(results, {"awaited_per_task": awaited, "pipelined": bare_rates[client][-1]}):
        print(line)
    print(f"({os.cpu_count()} CPUs; broker, edge and load generators on one machine, loopback)")
    print(f"load after: {load_after}")
    signal_figures = [
        figure(
            "single signals vs bare producer (awaited)",
            signals["events_per_second"],
            "events/s",
            awaited,
        ),
        figure("single signals p99", signals["p99_ms"], "ms"),
    ]
    write_json(args.json, "edge_load", [*figures, *signal_figures])


def report(
    singles: dict[str, list[dict[str, Any]]],
    batches: list[dict[str, Any]],
    bare_rates: dict[str, list[float]],
    client: str,
    args: argparse.Namespace,
    suffix: str = "",
) -> list[Figure]:
    """Print the paired figures of single events and batches; their JSON figures."""
    print(
        f"\nsingle analytics events: wrk 1 thread on CPU {LOAD_CPU}, {args.connections} "
        f"connections, {args.duration}s per phase, {args.rounds} round(s); each server 1 "
        f"process on CPU {SERVER_CPU}; edge Kafka client: {client}{suffix}"
    )
    print(f"{'round':<7}{'edge req/s':>12}{'bare req/s':>12}{'ratio':>8}"
          f"{'edge us/req':>13}{'bare us/req':>13}{'edge p99':>10}")  # fmt: skip
    ratios = []
    for number, (edge, bare) in enumerate(zip(singles["edge"], singles["bare"], strict=True)):
        ratio = edge["requests_per_second"] / bare["requests_per_second"]
        ratios.append(ratio)
        print(
            f"{number + 1:<7}{edge['requests_per_second']:>12,.0f}"
            f"{bare['requests_per_second']:>12,.0f}{ratio:>8.1%}"
            f"{edge['cpu_us_per_request']:>13.1f}{bare['cpu_us_per_request']:>13.1f}"
            f"{edge['p99_ms']:>10.2f}"
        )
    single_ratio = statistics.median(ratios)
    verdict = "meets" if single_ratio >= SINGLE_GOAL else "misses"
    print(f"single events / bare handler: {single_ratio:.1%} median ({verdict} {SINGLE_GOAL:.0%})")

    print(f"\nbatches of 100 analytics (load generator, 8 connections) vs bare producers, "
          f"pipelined, {args.rounds} round(s)")  # fmt: skip
    print(f"{'round':<7}{'edge ev/s':>12}" + "".join(f"{'bare ' + c:>16}" for c in CLIENTS)
          + "".join(f"{'/' + c:>12}" for c in CLIENTS))  # fmt: skip
    per_client: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for number, batch in enumerate(batches):
        rate = batch["events_per_second"]
        line = f"{number + 1:<7}{rate:>12,.0f}"
        line += "".join(f"{bare_rates[name][number]:>16,.0f}" for name in CLIENTS)
        for name in CLIENTS:
            per_client[name].append(rate / bare_rates[name][number])
            line += f"{per_client[name][-1]:>12.1%}"
        print(line)
    batch_ratio = statistics.median(per_client[client])
    verdict = "meets" if batch_ratio >= BATCH_GOAL else "misses"
    print(
        f"batch events / bare {client} producer (the edge's client): {batch_ratio:.1%} median "
        f"({verdict} {BATCH_GOAL:.0%}); "
        + ", ".join(f"/ bare {name}: {statistics.median(per_client[name]):.1%}" for name in CLIENTS)
    )
    edge_rps = statistics.median(p["requests_per_second"] for p in singles["edge"])
    bare_rps = statistics.median(p["requests_per_second"] for p in singles["bare"])
    batch_rate = statistics.median(b["events_per_second"] for b in batches)
    figures = [
        figure(f"single analytics events vs bare handler (wrk){suffix}", edge_rps, "req/s",
               bare_rps, single_ratio),
        figure(f"single analytics events p99{suffix}", statistics.median(
            p["p99_ms"] for p in singles["edge"]), "ms"),
        figure(f"batches of 100 analytics vs bare {client} producer (pipelined){suffix}",
               batch_rate, "events/s", statistics.median(bare_rates[client]), batch_ratio),
        figure(f"batches of 100 analytics p99{suffix}", batches[-1]["p99_ms"], "ms"),
    ]  # fmt: skip
    for name in CLIENTS:
        if name != client:
            figures.append(
                figure(f"batches of 100 analytics vs bare {name} producer (pipelined){suffix}",
                       batch_rate, "events/s", statistics.median(bare_rates[name]),
                       statistics.median(per_client[name]))
            )  # fmt: skip
    return figures


def table(results: dict[str, dict[str, Any]], bare: dict[str, float]) -> list[str]:
    """The load generator's scenarios, each as a fraction of both bare aiokafka rates.

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
