"""``promptline stack up|down|status``: the whole local stack, without Docker.

``up`` starts the broker, the ClickHouse dev server, the HTTP service, a worker and the guard in
the background, records their process ids under the state folder, waits until each is
healthy, and prints how to send a first event. ``down`` stops them by those ids.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from promptline.commands.admin import quickstart
from promptline.commands.migrate import run_migrations
from promptline.devstack.services import (
    broker_command,
    clickhouse_command,
    http_ok,
    pid_alive,
    spawn,
    stop_pid,
    tcp_open,
    wait_until,
)
from promptline.settings import Settings

START_TIMEOUT = 60.0
PROCESSES = ("broker", "clickhouse", "server", "worker", "guard")

# What the local stack's processes run with, beyond the defaults: Tansu has no
# idempotent producer, and a short session lets a restarted worker rejoin quickly.
LOCAL_OVERRIDES = {"kafka_enable_idempotence": False, "kafka_session_timeout_ms": 6000}


@dataclass(frozen=True, slots=True)
class StackPaths:
    """Where the local stack keeps its pids, logs and data."""

    root: Path

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"


LOCAL_WORKER_HTTP_PORT = 8081
"""The stack's one worker serves its health here (the default, 0, serves none)."""


def local_settings(base: Settings) -> Settings:
    """The settings the stack's processes run with: ``up`` waits for the worker's health."""
    update: dict[str, object] = dict(LOCAL_OVERRIDES)
    if not base.worker_http_port:
        update["worker_http_port"] = LOCAL_WORKER_HTTP_PORT
    return base.model_copy(update=update)


def local_env(settings: Settings) -> dict[str, str]:
    """Environment variables that give a child process exactly ``settings``."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"PROMPTLINE_{name.upper()}"] = text
    return env


def _port(address: str) -> int:
    return int(urlsplit(address if "://" in address else f"tcp://{address}").port or 0)


def _running(paths: StackPaths, name: str) -> int | None:
    pid_file = paths.pid_file(name)
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip() or 0)
    return pid if pid and pid_alive(pid) else None


def _start(paths: StackPaths, name: str, command: list[str], env: dict[str, str]) -> None:
    if _running(paths, name) is not None:
        print(f"  {name}: already running")
        return
    process = spawn(command, paths.log_file(name), env)
    paths.pids.mkdir(parents=True, exist_ok=True)
    paths.pid_file(name).write_text(f"{process.pid}\n")
    print(f"  {name}: started (pid {process.pid}, log {paths.log_file(name)})")


def up(base: Settings) -> int:
    """Start everything, wait for health, print the URL, a key and a curl command.

    The key is a fresh one, unless the stack was already up and ``local.env`` holds a key
    that still authenticates: then that key is kept, as its user may be using it.
    """
    settings = local_settings(base)
    paths = StackPaths(settings.state_dir.resolve())
    env = local_env(settings.model_copy(update={"state_dir": paths.root}))
    broker_port = _port(settings.kafka_bootstrap_servers.split(",")[0])
    clickhouse_port = _port(settings.clickhouse_url)
    promptline = [sys.executable, "-m", "promptline"]
    already_up = all(_running(paths, name) is not None for name in PROCESSES)
    print("Starting the promptline local stack:")
    _start(paths, "broker", broker_command(broker_port), env)
    wait_until("broker", lambda: tcp_open(broker_port), START_TIMEOUT, paths.log_file("broker"))
    _start(paths, "clickhouse", clickhouse_command(clickhouse_port, paths.root / "clickhouse"), env)
    wait_until(
        "clickhouse",
        lambda: http_ok(f"http://127.0.0.1:{clickhouse_port}/ping"),
        START_TIMEOUT,
        paths.log_file("clickhouse"),
    )
    asyncio.run(run_migrations(settings))
    _start(paths, "server", [*promptline, "serve"], env)
    wait_until(
        "server",
        lambda: http_ok(f"{settings.base_url}/readyz"),
        START_TIMEOUT,
        paths.log_file("server"),
    )
    _start(paths, "worker", [*promptline, "worker"], env)
    wait_until(
        "worker",
        lambda: http_ok(f"http://{settings.listen_host}:{settings.worker_http_port}/healthz"),
        START_TIMEOUT,
        paths.log_file("worker"),
    )
    _start(paths, "guard", [*promptline, "guard"], env)
    demo = asyncio.run(quickstart(settings, keep=_held_key(paths) if already_up else ""))
    _write_local_env(paths, settings.base_url, demo["api_key"])
    _print_welcome(settings, demo)
    return 0


def down(base: Settings) -> int:
    """Stop every process the stack started, by the ids it recorded."""
    paths = StackPaths(base.state_dir.resolve())
    stopped = False
    for name in reversed(PROCESSES):
        pid = _running(paths, name)
        if pid is not None:
            killed = stop_pid(pid)
            print(f"  {name}: stopped (pid {pid}{', killed' if killed else ''})")
            stopped = True
        paths.pid_file(name).unlink(missing_ok=True)
    if not stopped:
        print("The local stack was not running.")
    return 0


def status(base: Settings) -> int:
    """Print which of the stack's processes run.

    Up or down are both answers (exit 0); only a stack partly up, a process having died,
    exits 1, so scripts notice it.
    """
    paths = StackPaths(base.state_dir.resolve())
    running = {name: _running(paths, name) for name in PROCESSES}
    for name, pid in running.items():
        print(f"  {name}: {f'running (pid {pid})' if pid else 'stopped'}")
    up_count = sum(pid is not None for pid in running.values())
    if up_count == len(PROCESSES):
        print(f"The local stack is up at {base.base_url}.")
        return 0
    if up_count == 0:
        print("The local stack is down (start it with: make up).")
        return 0
    print("The local stack is partly up: see its logs, then make down and make up.")
    return 1


def _held_key(paths: StackPaths) -> str:
    """The API key ``local.env`` holds, or "" (``quickstart`` checks it still authenticates)."""
    local = paths.root / "local.env"
    if not local.exists():
        return ""
    for line in local.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "PROMPTLINE_API_KEY":
            return value.strip()
    return ""


def _write_local_env(paths: StackPaths, url: str, api_key: str) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / "local.env").write_text(f"PROMPTLINE_URL={url}\nPROMPTLINE_API_KEY={api_key}\n")


def _print_welcome(settings: Settings, demo: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "prompt_id": demo["prompt_id"],
            "version_hash": demo["version_hash"],
            "latency_ms": 412.5,
            "cost_usd": 0.0021,
            "score": 0.9,
        }
    )
    send = (
        f"curl -i -X POST {settings.base_url}/api/v1/prompts/analytics \\\n"
        f"  -H 'Authorization: Bearer {demo['api_key']}' \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
    database = settings.clickhouse_database
    query = (
        f"curl -s '{settings.clickhouse_url}/?database={database}' --data-binary "
        "'SELECT event_id, received_at, version_hash, latency_ms, cost_usd, score "
        "FROM analytics_events FINAL ORDER BY received_at DESC LIMIT 10 FORMAT PrettyCompact'"
    )
    kept = "kept: the stack was already up" if demo.get("key_kept") else "shown once"
    print(
        f"\npromptline is up at {settings.base_url}\n"
        f"API key ({kept}): {demo['api_key']}\n"
        f"(URL and key are also in {settings.state_dir / 'local.env'})\n"
        f"Dashboard: {settings.base_url}/ui/ (sign in with the key)\n\n"
        f"Send an analytics event:\n\n{send}\n\n"
        f"A worker writes it to ClickHouse within about a second; see it with:\n\n{query}\n\n"
        "Stop everything with: make down\n"
    )
