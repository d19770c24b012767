"""SIGTERM under load: requests in flight are answered, and every 2xx event is in Kafka.

``promptline serve`` runs as a real process, with its access log on. Concurrent clients
send signals, analytics events and batches; SIGTERM arrives mid-load; the clients go on
until the process has exited. Then:

- requests in flight at the signal were answered: 2xx answers arrived after it was
  sent, and the server logged no request whose handler was cut off (status 499, what
  the access log records for a handler cancelled when the shutdown timeout runs out);
- no request got a 500;
- every signal id and analytics idempotency key that came back with a 2xx is in Kafka.

A request that had not reached a handler when the listener closed may fail to connect
(the client retries; nothing was accepted), so that is not counted against the server.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ingest.observe import CLIENT_CLOSED
from promptline.commands.admin import quickstart
from promptline.devstack.stack import local_env
from promptline.settings import Settings
from promptline.topics import EventKind
from tests.ingest.kafka_reader import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
LOAD_SECONDS_BEFORE_SIGTERM = 1.5


class Acknowledged:
    """What the server answered 2xx for."""

    def __init__(self) -> None:
        self.signal_ids: set[int] = set()
        self.analytics_keys: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.after_sigterm = 0
        self.failures = 0
        self.sigterm_sent = False

    def answered(self, status: int) -> None:
        """Count an answer; a 2xx after SIGTERM was sent is a request that was drained."""
        self.statuses[status] += 1
        if self.sigterm_sent and 200 <= status < 300:
            self.after_sigterm += 1


async def _wait_healthy(base: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.returncode is None, "promptline serve exited during start-up"
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("promptline serve did not become healthy")


async def _client(
    number: int,
    base: str,
    demo: dict[str, Any],
    acked: Acknowledged,
    stop: asyncio.Event,
) -> None:
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    signal_url = f"{base}/api/v1/prompts/{demo['prompt_name']}/signals"
    analytics = {"prompt_id": demo["prompt_id"], "version_hash": demo["version_hash"]}
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=1, force_close=number % 2 == 0)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            step = next(counter)
            try:
                if step % 3 == 0:
                    async with session.post(
                        signal_url, json={"value": "positive"}, headers=headers
                    ) as response:
                        if response.status == 201:
                            acked.signal_ids.add((await response.json())["data"]["id"])
                        acked.answered(response.status)
                elif step % 3 == 1:
                    key = f"c{number}-{step}"
                    async with session.post(
                        f"{base}/api/v1/prompts/analytics",
                        json={**analytics, "latency_ms": step},
                        headers={**headers, "Idempotency-Key": key},
                    ) as response:
                        if response.status == 204:
                            acked.analytics_keys.add(key)
                        acked.answered(response.status)
                else:
                    events: list[dict[str, Any]] = [
                        {"type": "signal", "prompt_id": demo["prompt_name"], "value": "negative"}
                        for _ in range(25)
                    ] + [
                        {
                            "type": "analytics",
                            **analytics,
                            "idempotency_key": f"c{number}-{step}-{i}",
                        }
                        for i in range(25)
                    ]
                    async with session.post(
                        f"{base}/api/v1/events/batch", json={"events": events}, headers=headers
                    ) as response:
                        if response.status in (200, 207):
                            body = await response.json()
                            for result, event in zip(body["results"], events, strict=True):
                                if result["status"] == 201:
                                    acked.signal_ids.add(result["id"])
                                elif result["status"] == 204:
                                    acked.analytics_keys.add(event["idempotency_key"])
                        acked.answered(response.status)
            except (TimeoutError, aiohttp.ClientError):
                acked.failures += 1
                await asyncio.sleep(0.01)


async def test_sigterm_mid_load_loses_no_acknowledged_event(
    migrated: Settings, tmp_path: Path
) -> None:
    demo = await quickstart(migrated)  # a business organisation: room for the load
    base = migrated.base_url
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "promptline",
            "serve",
            env={**os.environ, **local_env(migrated), "PROMPTLINE_EDGE_ACCESS_LOG": "true"},
            cwd=ROOT,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await _wait_healthy(base, process)
        acked, stop = Acknowledged(), asyncio.Event()
        clients = [asyncio.create_task(_client(n, base, demo, acked, stop)) for n in range(CLIENTS)]
        await asyncio.sleep(LOAD_SECONDS_BEFORE_SIGTERM)
        acked.sigterm_sent = True
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), timeout=60)
        stop.set()
        await asyncio.gather(*clients)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = log_path.read_text(errors="replace")
    assert returncode == 0, log
    assert acked.signal_ids and acked.analytics_keys
    assert acked.after_sigterm > 0, "no request in flight at SIGTERM was answered"
    access = [line for line in log.splitlines() if " promptline.access: " in line]
    assert access, "the access log is on: every answered request has a line"
    cut_off = [line for line in access if line.endswith(f" {CLIENT_CLOSED}")]
    assert not cut_off, f"{len(cut_off)} requests in flight were cut off: {cut_off[:3]}"
    assert acked.statuses[500] == 0, log

    signals = await read_topic(migrated, EventKind.SIGNAL, expected=len(acked.signal_ids))
    calls = await read_topic(migrated, EventKind.ANALYTICS, expected=len(acked.analytics_keys))
    missing_signals = acked.signal_ids - {record["signal_id"] for record in signals}
    missing_calls = acked.analytics_keys - {record["idempotency_key"] for record in calls}
    assert not missing_signals, f"{len(missing_signals)} acknowledged signals lost"
    assert not missing_calls, f"{len(missing_calls)} acknowledged analytics events lost"
    print(
        f"acknowledged {len(acked.signal_ids)} signals and {len(acked.analytics_keys)} analytics"
        f" events ({acked.after_sigterm} 2xx after SIGTERM, {acked.failures} not connected,"
        f" statuses {dict(acked.statuses)})"
    )
