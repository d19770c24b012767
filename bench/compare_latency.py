"""Compare benchmark: latency of ``GET /dashboard/prompts/{name}/compare`` over 10M events.

``python -m bench.compare_latency [--events N] [--repeat R] [--use-env | --data-dir DIR]``

Generates the events directly in ClickHouse (``INSERT ... SELECT FROM numbers()``, so the
hourly views fill as they would from the workers): N analytics events of one prompt with
four versions over 30 days, N/10 signals (1% of them naming only the trace of a usage link,
which compare attributes through the links) and N/20 usage links, each its own trace. Then
it times the route over HTTP (aiohttp, in process) for: the whole history; a 7-day window
with ragged edges (whole hours from the aggregates, the edges from raw rows); the whole
history by day; and, for contrast, the same per-version figures computed from the raw table
alone. Last, each of compare's queries alone, over the whole history with and without
days, so a figure that grows with the history shows which query makes it grow; and the
distinct traces compare shows (a sketch) beside the exact count. The load averages are
printed before and after: the machine is shared.

With ``--data-dir``, ClickHouse keeps its data in that folder and the prompt's ids are
fixed, so a later run with the same ``--events`` only migrates (new migrations fill their
tables from the rows stored) and times: 100 million events take long to generate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bench.figures import Figure, add_json_option, figure, write_json
from bench.worker_services import bench_settings
from compare import api as compare_api
from compare.queries import (
    Scope,
    analytics_sql,
    exposures_sql,
    links_sql,
    named_votes_sql,
    traced_votes_sql,
)
from compare.warehouse import WAREHOUSE, Warehouse
from compare.window import Bucket, Window
from controlplane.api.context import CONTROL_PLANE, ControlPlane
from controlplane.api.ratelimit import RateLimiter
from controlplane.catalog import (
    Catalog,
    CatalogWatcher,
    DeploymentRecord,
    Principal,
    PromptEntry,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.keys import digest
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from ingest.context import EDGE_CONTEXT, EdgeContext
from ingest.producer import EventProducer
from promptline.clickhouse import connect
from promptline.devstack.services import (
    LOOPBACK,
    clickhouse_command,
    free_port,
    http_ok,
    running,
)
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from promptline.settings import Settings
from sql.runner import migrate

KEY = "pl_sk_bench"
DAYS = 30
CHUNK = 1_000_000
TRACE = (
    "reinterpretAsUUID(unhex(concat(leftPad(hex(cityHash64({n}, 7)), 16, '0'),"
    " leftPad(hex(cityHash64({n}, 8)), 16, '0'))))"
)
"""The trace of usage link ``n``: the same in the links and in the signals that name it."""
QUERIES = (analytics_sql, named_votes_sql, traced_votes_sql, links_sql, exposures_sql)


def prompt(project_id: uuid.UUID) -> PromptEntry:
    """The bench prompt; its ids follow from the project's, so a kept data dir finds it."""

    def named(name: str) -> uuid.UUID:
        return uuid.uuid5(project_id, name)

    versions = [
        VersionRecord(named(f"v{number}"), number, f"bench prompt, version {number}: {{{{q}}}}")
        for number in range(1, 5)
    ]
    traffic = [{"version": f"v{n}", "weight": w} for n, w in ((3, 80), (4, 20))]
    deployment = DeploymentRecord(named("deployment"), "bench", traffic, [], datetime.now(UTC))
    return build_prompt_entry(named("prompt"), project_id, "bench", versions, [deployment])


@contextlib.contextmanager
def kept_settings(folder: Path) -> Iterator[Settings]:
    """ClickHouse alone (compare needs no broker), its data kept in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with running(
        clickhouse_command(port, folder / "clickhouse"),
        folder / "clickhouse.log",
        ready=lambda: http_ok(f"http://{LOOPBACK}:{port}/ping"),
        what="clickhouse",
    ):
        yield Settings(
            clickhouse_url=f"http://{LOOPBACK}:{port}",
            clickhouse_database="bench_compare",
            log_level="WARNING",
            log_format="text",
        )


async def generate(settings: Settings, entry: PromptEntry, events: int, start: datetime) -> float:
    """Insert the events in chunks through the raw tables (views included); seconds taken."""
    hashes = ", ".join(f"'{entry.versions_by_number[n].content_hash}'" for n in range(1, 5))
    common = {
        "start": int(start.timestamp() * 1000),
        "span": DAYS * 86_400_000,
        "org": uuid.uuid4(),
        "project": entry.project_id,
        "prompt": entry.id,
    }
    tables = (
        (
            "analytics_events (event_id, received_at, org_id, project_id, prompt_id,"
            " version_hash, latency_ms, cost_usd, score, dedup_key, kafka_partition,"
            " kafka_offset, kafka_block_first, kafka_block_last)",
            f"[{hashes}][1 + number % 4],"
            " (40 + cityHash64(number) % 900) * (1 + (number % 4) / 10),"
            " if(number % 10 = 0, NULL, (cityHash64(number, 1) % 100) / 10000),"
            " if(number % 3 = 0, NULL, (cityHash64(number, 2) % 1000) / 1000),"
            " toString(number), 0, number, number, number",
            events,
        ),
        (
            "signal_events (event_id, received_at, org_id, project_id, prompt_id, signal_id,"
            " value, version, version_hash, trace_id, metadata, dedup_key, kafka_partition,"
            " kafka_offset, kafka_block_first, kafka_block_last)",
            " number, if(cityHash64(number) % 100 < 55 + number % 4 * 5, 'positive',"
            " 'negative'), if(number % 100 = 0, 0, 1 + number % 4), '',"
            f" if(number % 100 = 0, {TRACE.format(n='intDiv(number, 2)')}, NULL), '{{}}',"
            " toString(number), 0, number, number, number",
            events // 10,
        ),
        (
            "usage_links (event_id, received_at, org_id, project_id, prompt_id, prompt_name,"
            " version, version_hash, trace_id, span_id, dedup_key, kafka_partition,"
            " kafka_offset, kafka_block_first, kafka_block_last)",
            f" 'bench', 1 + number % 4, [{hashes}][1 + number % 4], {TRACE.format(n='number')},"
            " NULL, toString(number), 0, number, number, number",
            events // 20,
        ),
    )
    client = await connect(settings)
    started = time.perf_counter()
    try:
        for target, values, count in tables:
            for offset in range(0, count, CHUNK):
                rows = min(CHUNK, count - offset)
                await client.command(
                    f"INSERT INTO {target} SELECT generateUUIDv7(number),"
                    " fromUnixTimestamp64Milli(toInt64({start:Int64}"
                    f" + intDiv(number * {{span:Int64}}, {count})), 'UTC'),"
                    " {org:UUID}, {project:UUID}, {prompt:UUID}, "
                    f"{values} FROM numbers({offset}, {rows})",
                    parameters=common,
                    settings={"max_insert_block_size": CHUNK},
                )
    finally:
        await client.close()
    return time.perf_counter() - started


async def app_for(settings: Settings, entry: PromptEntry, store: Path) -> web.Application:
    """The compare routes over the generated prompt, with an empty control-plane store.

    The store has no deployment history, so the baseline is the largest share of the
    deployment in force, as for a prompt never deployed to one version alone.
    """
    principal = Principal(
        uuid.uuid4(), entry.project_id, uuid.uuid4(), "business", frozenset({"read"})
    )
    url = f"sqlite+aiosqlite:///{store / 'control.db'}"
    await upgrade(url)
    watcher = CatalogWatcher(sessions=session_factory(create_engine(url)))
    watcher.current = Catalog(1, {digest(KEY): principal}, {entry.id: entry})
    app = web.Application(middlewares=[error_middleware(dialect_for)])
    app[CONTROL_PLANE] = ControlPlane(catalog=watcher, limiter=RateLimiter())
    app[EDGE_CONTEXT] = EdgeContext(watcher, cast(EventProducer, None), "bench.")
    app[WAREHOUSE] = Warehouse(settings)
    compare_api.add_routes(app)
    return app


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm: connections, caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    """The 95th percentile of the samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, samples: list[float]) -> None:
    print(
        f"  {name:<44} median {statistics.median(samples):8.1f} ms"
        f"  p95 {p95(samples):8.1f} ms  min {min(samples):8.1f} ms"
    )


def load() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


async def each_query(
    settings: Settings, entry: PromptEntry, repeat: int
) -> dict[tuple[str, str], float]:
    """The median of each of compare's queries alone over the whole history, by day or not."""
    client = await connect(settings)
    medians = {}
    try:
        for bucket in (None, Bucket.DAY):
            scope = Scope(entry.project_id, entry.id, Window(), bucket)
            for build in QUERIES:
                query = functools.partial(client.query, *build(scope))
                samples = await timed(repeat, query)
                medians[(build.__name__, bucket or "whole")] = statistics.median(samples)
    finally:
        await client.close()
    return medians


async def trace_accuracy(settings: Settings, entry: PromptEntry) -> None:
    """Print compare's distinct traces per version (a sketch) beside the exact count."""
    client = await connect(settings)
    try:
        scope = Scope(entry.project_id, entry.id, Window())
        found = {row[0]: row[-1] for row in (await client.query(*links_sql(scope))).result_rows}
        exact = await client.query(
            "SELECT version, uniqExact(trace_id) FROM usage_links"
            " WHERE project_id = {p:UUID} AND prompt_id = {q:UUID} GROUP BY version",
            parameters={"p": entry.project_id, "q": entry.id},
        )
    finally:
        await client.close()
    counts = {int(row[0]): int(row[1]) for row in exact.result_rows}
    print("linked_traces over the whole history, compare's sketch against exact:")
    for version, count in sorted(counts.items()):
        error = (found.get(version, 0) - count) / count
        print(f"  v{version}: {found.get(version, 0):,} vs {count:,} ({error:+.2%})")
    print(f"  (every version's traces are its own: {sum(counts.values()):,} in all)")


async def stored(
    settings: Settings, events: int, kept: Path | None
) -> tuple[PromptEntry, datetime]:
    """The prompt and the start of its history: generated now, or as a kept data dir has it."""
    note = None if kept is None else kept / f"generated-{events}.json"
    if note is not None and note.exists():
        saved = json.loads(note.read_text())
        print(f"reusing {events:,} events kept in {kept}")
        return prompt(uuid.UUID(saved["project"])), datetime.fromisoformat(saved["start"])
    entry = prompt(uuid.uuid4())
    start = (datetime.now(UTC) - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    seconds = await generate(settings, entry, events, start)
    print(
        f"generated {events:,} analytics events (+ {events // 10:,} signals,"
        f" {events // 20:,} usage links) in {seconds:.1f}s"
    )
    if note is not None:
        note.write_text(json.dumps({"project": str(entry.project_id), "start": str(start)}))
    return entry, start


async def run(settings: Settings, events: int, repeat: int, kept: Path | None) -> list[Figure]:
    print(f"before: {load()}")
    started = time.perf_counter()
    await migrate(settings)
    print(f"migrated in {time.perf_counter() - started:.1f}s")
    entry, start = await stored(settings, events, kept)
    app = await app_for(settings, entry, Path(tempfile.mkdtemp(prefix="compare-bench-")))
    server = TestServer(app)
    await server.start_server()
    headers = {"Authorization": f"Bearer {KEY}"}
    week_from = (start + timedelta(days=DAYS - 8, minutes=17)).isoformat()
    week_to = (start + timedelta(days=DAYS - 1, hours=5, minutes=41)).isoformat()
    raw_sql = (
        "SELECT version_hash, count(), avg(latency_ms), quantilesDD(0.01, 0.5, 0.95, 0.99)"
        "(latency_ms), sum(cost_usd), avg(score) FROM analytics_events"
        " WHERE project_id = {p:UUID} AND prompt_id = {q:UUID} GROUP BY version_hash"
    )
    try:
        async with ClientSession(base_url=str(server.make_url("/"))) as session:

            async def get(**params: str) -> None:
                async with session.get(
                    "/dashboard/prompts/bench/compare", params=params, headers=headers
                ) as response:
                    assert response.status == 200, await response.text()
                    await response.read()

            client = await connect(settings)
            try:

                async def raw() -> None:
                    await client.query(raw_sql, parameters={"p": entry.project_id, "q": entry.id})

                print(f"compare latency over {events:,} stored events ({repeat} runs each):")
                whole = await timed(repeat, get)
                report("whole history", whole)
                week = await timed(repeat, lambda: get(**{"from": week_from, "to": week_to}))
                report("7-day window, ragged edges", week)
                by_day = await timed(repeat, lambda: get(bucket="day"))
                report("whole history, bucket=day", by_day)
                contrast = await timed(repeat, raw)
                report("(contrast) figures from raw rows only", contrast)
                raw_median = statistics.median(contrast)
                print(
                    "  by day / whole history:"
                    f" {statistics.median(by_day) / statistics.median(whole):.2f}"
                )
                medians = await each_query(settings, entry, repeat)
                print("each query alone, median ms (whole history, by day):")
                for build in QUERIES:
                    whole_ms, day_ms = (medians[(build.__name__, b)] for b in ("whole", "day"))
                    print(f"  {build.__name__:<20} {whole_ms:8.1f} {day_ms:8.1f}")
                await trace_accuracy(settings, entry)
                print(f"after: {load()}")
                return [
                    figure(f"{name} median vs raw rows only", statistics.median(samples), "ms",
                           raw_median)
                    for name, samples in (
                        ("whole history", whole),
                        ("7-day window", week),
                        ("whole history by day", by_day),
                    )
                ] + [
                    figure(f"{name} alone, {bucket}, median", value, "ms")
                    for (name, bucket), value in medians.items()
                ]  # fmt: skip
            finally:
                await client.close()
    finally:
        await app[WAREHOUSE].close()
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_latency")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--use-env", action="store_true", help="use PROMPTLINE_* services")
    chosen.add_argument(
        "--data-dir", type=Path, help="keep ClickHouse's data here and reuse it next time"
    )
    add_json_option(parser)
    args = parser.parse_args()
    services = (
        bench_settings(args.use_env) if args.data_dir is None else kept_settings(args.data_dir)
    )
    with services as settings:
        figures = asyncio.run(run(settings, args.events, args.repeat, args.data_dir))
        write_json(args.json, "compare_latency", figures)


if __name__ == "__main__":
    main()
