"""The SDK's event senders against the real service and broker: every event lands once.

The service (``create_app``) listens on a local port; a transport wrapper answers the
sender's first two requests with 503 itself, as an edge whose broker is away would, so
that those events are delivered by retries. Each of the 1,000 events of each kind is
then in Kafka exactly once, under the key the SDK gave it (usage links under their
natural key: one record per trace).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind
from promptline_sdk.events import AsyncEventSender, EventSender
from tests.ingest.kafka_reader import read_topic

pytestmark = [pytest.mark.kafka]

EACH = 1_000
WAIT = 120.0  # a bound, never an expectation


class RefuseFirst(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers the first ``n`` requests 503 without passing them on; records their keys."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.refused: list[str] = []
        self.sync = httpx.HTTPTransport()
        self.concurrent = httpx.AsyncHTTPTransport()

    def _refuse(self, request: httpx.Request) -> httpx.Response | None:
        if self.left == 0:
            return None
        self.left -= 1
        events = json.loads(request.content)["events"]
        self.refused.extend(event["idempotency_key"] for event in events)
        body = {"error": {"code": "unavailable", "message": "Kafka did not acknowledge."}}
        return httpx.Response(503, json=body, headers={"Retry-After": "0"})

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or self.sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or await self.concurrent.handle_async_request(request)

    def close(self) -> None:
        self.sync.close()

    async def aclose(self) -> None:
        await self.concurrent.aclose()


@pytest.fixture
async def demo(migrated: Settings) -> dict[str, Any]:
    return await quickstart(migrated)


@pytest.fixture
async def edge_url(migrated: Settings, demo: dict[str, Any]) -> AsyncIterator[str]:
    server = TestServer(create_app(migrated))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _send_all(events: EventSender | AsyncEventSender, demo: dict[str, Any]) -> dict[str, Any]:
    """1,000 events of each kind, interleaved; the keys (and traces) they were given."""
    sent: dict[str, Any] = {"analytics": [], "signal": [], "exposure": [], "traces": []}
    for i in range(EACH):
        sent["analytics"].append(
            events.analytics(demo["prompt_id"], demo["version_hash"], latency_ms=float(i))
        )
        value = "positive" if i % 2 else "negative"
        sent["signal"].append(events.signal(demo["prompt_name"], value, metadata={"i": i}))
        trace = uuid.uuid4()
        sent["traces"].append(str(trace))
        events.usage(demo["prompt_name"], 1, trace)
        sent["exposure"].append(
            events.exposure(
                demo["prompt_name"], 1, demo["version_hash"], None, "latest", False, f"user-{i}"
            )
        )
    return sent


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_every_event_lands_in_kafka_once_though_the_first_attempts_fail(
    migrated: Settings, demo: dict[str, Any], edge_url: str, flavour: str
) -> None:
    transport = RefuseFirst(2)
    options: dict[str, Any] = {"batch_size": 500, "flush_interval": 3600.0, "retry_base": 0.01}
    if flavour == "sync":
        sync = EventSender(edge_url, demo["api_key"], transport=transport, **options)
        sent = _send_all(sync, demo)
        assert await asyncio.to_thread(sync.close, WAIT)  # the loop serves meanwhile
        stats = sync.stats
    else:
        concurrent = AsyncEventSender(edge_url, demo["api_key"], transport=transport, **options)
        sent = _send_all(concurrent, demo)
        assert await concurrent.aclose(WAIT)
        stats = concurrent.stats
    assert len(transport.refused) == 1_000  # two batches of 500, delivered by retries
    assert (stats.sent, stats.failed_batches, stats.retried, stats.queued) == (
        4 * EACH,
        2,
        1_000,
        0,
    )
    assert stats.dropped == {}

    for kind in (EventKind.ANALYTICS, EventKind.SIGNAL, EventKind.EXPOSURE):
        records = await read_topic(migrated, kind, expected=EACH, within=WAIT)
        keys = [record["idempotency_key"] for record in records]
        assert sorted(keys) == sorted(sent[kind.value]), kind  # each once, none other
    usages = await read_topic(migrated, EventKind.USAGE, expected=EACH, within=WAIT)
    assert sorted(record["trace_id"] for record in usages) == sorted(sent["traces"])
