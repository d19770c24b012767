"""An app on the SDK keeps resolving and loses no event while the service dies and returns.

Against the real broker and ClickHouse engine, with ``promptline serve`` in a process of
its own: an app resolves and sends 10,000 analytics events through the SDK while the
service is killed (SIGKILL, nothing flushed) and started again, twice. Resolve answers from
the configuration the SDK holds all along; the sender retries what was not acknowledged,
with the keys it gave each event when it was made; afterwards ClickHouse holds each of the
10,000 exactly once (raw rows, not merged ones).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptline.commands.admin import quickstart
from promptline.devstack.services import free_port, http_ok
from promptline.devstack.stack import local_env
from promptline.settings import Settings
from promptline.worker import run_worker
from promptline_sdk import Client
from tests.support.warehouse import wait_for_rows

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

EVENTS = 10_000
KILLS_AT = (3_000, 6_500)
READY_WITHIN = 60.0
"""How long the service may take to start: a bound on waiting, not a check."""


class Service:
    """``promptline serve`` in a child process that can be killed and started again."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **local_env(self.settings)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "promptline", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + READY_WITHIN
        while not http_ok(f"{self.settings.base_url}/readyz"):
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def service(migrated: Settings, tmp_path: Path) -> Iterator[Service]:
    settings = migrated.model_copy(update={"listen_port": free_port()})
    running = Service(settings, tmp_path / "serve.log")
    try:
        yield running
    finally:
        running.stop()


async def test_no_event_lost_or_doubled_and_resolve_answers_while_the_service_restarts(
    service: Service,
) -> None:
    settings = service.settings
    demo = await quickstart(settings)
    await asyncio.to_thread(service.start)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    client = await asyncio.to_thread(
        Client,
        settings.base_url,
        demo["api_key"],
        startup_timeout=30.0,
        # Room for every event of the run (exposures too) while the service is down: a
        # full queue drops the newest, counted, which is not what this test is about.
        event_options={"flush_interval": 0.2, "retry_cap": 1.0, "max_queue": 100_000},
    )
    try:
        answers = await asyncio.to_thread(_traffic, client, service, demo)
        assert {answer["source"] for answer in answers} == {"config"}
        assert {answer["error"] for answer in answers} == {None}
        assert {answer["version"] for answer in answers} == {"v1"}
        assert await asyncio.to_thread(client.flush, 180.0)
        stats = client.events.stats if client.events is not None else None
        assert stats is not None and stats.sent >= EVENTS and not stats.dropped, stats
    finally:
        await asyncio.to_thread(client.close, 30.0)
    try:
        [(rows, keys)] = await wait_for_rows(
            settings,
            "SELECT count(), uniqExact(dedup_key) FROM analytics_events"
            " WHERE project_id = {project:UUID} HAVING count() >= {events:UInt32}",
            expected=1,
            within=120.0,
            parameters={"project": demo["project_id"], "events": EVENTS},
        )
        await asyncio.sleep(2.0)  # anything doubled would have landed by now
        [(rows, keys)] = await wait_for_rows(
            settings,
            "SELECT count(), uniqExact(dedup_key) FROM analytics_events"
            " WHERE project_id = {project:UUID}",
            expected=1,
            parameters={"project": demo["project_id"]},
        )
    finally:
        stop.set()
        await worker
    assert (rows, keys) == (EVENTS, EVENTS)


def _traffic(client: Client, service: Service, demo: dict[str, Any]) -> list[dict[str, Any]]:
    """Resolve and report EVENTS calls, killing and restarting the service on the way."""
    answers = []
    for index in range(EVENTS):
        if index in KILLS_AT:
            service.kill()
            for _ in range(200):  # the app goes on while the service is down
                resolution = client.resolve(demo["prompt_name"], f"u-down-{index}-{_}")
                answers.append(_shown(resolution))
            service.start()
        resolution = client.resolve(demo["prompt_name"], f"u{index}", {"store_name": "s"})
        answers.append(_shown(resolution))
        client.analytics(
            demo["prompt_id"], demo["version_hash"], latency_ms=float(index % 997) + 1.0
        )
    return answers


def _shown(resolution: Any) -> dict[str, Any]:
    return {
        "source": str(resolution.source),
        "error": resolution.error,
        "version": resolution.version,
    }
