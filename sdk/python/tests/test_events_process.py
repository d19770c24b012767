"""The sync sender across processes: after ``fork()`` and at interpreter exit.

A real HTTP server on a local port stands in for the batch route, so that what a child or
an exiting process sends is seen here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from promptline_sdk.events import EventSender

SOURCE = Path(__file__).resolve().parents[1] / "src"
WAIT = 60.0  # a bound, never an expectation


class Server:
    """Records each batch's events; answers 200, or 503 under ``/down``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events = json.loads(body)["events"]
                if self.path.startswith("/down/"):
                    self._answer(503, {"error": {"code": "unavailable"}}, {"Retry-After": "0"})
                    return
                with recorder.lock:
                    recorder.events.extend(events)
                results = [{"index": i, "status": 204} for i in range(len(events))]
                self._answer(200, {"results": results}, {})

            def _answer(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def keys(self) -> list[str]:
        with self.lock:
            return [event["idempotency_key"] for event in self.events]


@pytest.fixture
def server() -> Iterator[Server]:
    recorder = Server()
    thread = threading.Thread(target=recorder.http.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.http.shutdown()
    recorder.http.server_close()
    thread.join(WAIT)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_drops_the_inherited_queue_and_sends_its_own(server: Server) -> None:
    events = EventSender(server.url, "key", flush_interval=3600.0)
    parent_keys = [events.signal("p", "positive", metadata={"i": i}) for i in range(3)]
    assert events.stats.queued == 3
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking with threads
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            inherited = events.stats.queued
            key = events.analytics("p", "sha256:h")
            report = {"inherited": inherited, "key": key, "flushed": events.flush(WAIT)}
            report["stats"] = events.stats.queued, events.stats.sent
            os.write(write, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = json.loads(pipe.read() or b"{}")
    assert os.waitpid(pid, 0)[1] == 0
    assert report["inherited"] == 0 and report["flushed"] is True
    assert report["stats"] == [0, 1] and server.keys == [report["key"]]
    child_key = uuid.UUID(report["key"])
    assert child_key.version == 8 and str(child_key)[:24] != parent_keys[0][:24]
    assert events.close(WAIT)
    assert server.keys == [report["key"], *parent_keys]


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env=env,
        check=True,
    )


EXITING = """
import sys
from promptline_sdk.events import EventSender

events = EventSender(sys.argv[1], "key", flush_interval=3600.0, exit_timeout=float(sys.argv[2]))
for i in range(7):
    print(events.analytics("p", "sha256:h", latency_ms=i))
"""


def test_events_queued_at_exit_are_sent_before_the_process_ends(server: Server) -> None:
    done = _run(EXITING, server.url, "30")
    assert server.keys == done.stdout.split()
    assert len(server.keys) == 7


def test_exit_waits_a_bounded_time_when_the_edge_is_down(server: Server) -> None:
    done = _run(EXITING, server.url + "/down", "0.2")
    assert len(done.stdout.split()) == 7 and server.keys == []
    assert "7 events not delivered at exit" in done.stderr
