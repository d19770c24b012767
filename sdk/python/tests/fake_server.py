"""A fake promptline server for the SDK's tests, behind ``httpx.MockTransport``.

It serves ``GET /v1/sdk/config`` (with its ETag, and 304 for a matching ``If-None-Match``),
``GET /v1/sdk/stream`` (``event: config`` at once and after each ``publish``, a ``: ping``
comment between) and ``POST /api/v1/events/batch`` (every event accepted and kept). It can
be taken down (connections refused) or made to hang. No server package is imported: the
SDK's unit tests run without the server installed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

PROMPT_UUID = "0193b2c4-d5e6-7f0a-8b9c-0d1e2f3a4b5c"
PROMPT_HEX = PROMPT_UUID.replace("-", "")
KEY = "pl_test_key"
BASE_URL = "http://promptline.test"


def version(number: int, content: str) -> dict[str, Any]:
    """A version entry of the configuration."""
    return {
        "version": f"v{number}",
        "number": number,
        "version_id": f"ver_{number:032x}",
        "content_hash": f"sha256:{number:064x}",
        "content": content,
        "variables": [],
    }


def make_config(etag: str = '"e1"', *, serve: int = 1, label: str = "stable") -> dict[str, Any]:
    """A project with one prompt, ``support-bot``, serving version ``serve`` to everyone."""
    return {
        "project_id": "0193b2c4-0000-7000-8000-000000000001",
        "etag": etag,
        "generated_at": "2026-12-07T01:00:00Z",
        "hashing": {
            "algorithm": "murmur3_x86_32",
            "seed": 0,
            "buckets": 10000,
            "input": "{salt}:{user_id}",
            "variant_salt": "<prompt uuid hex>",
            "coverage_salt": "<prompt uuid hex>:coverage:<rule name>",
        },
        "prompts": [
            {
                "name": "support-bot",
                "prompt_id": "prm_" + PROMPT_HEX,
                "prompt_uuid": PROMPT_UUID,
                "traffic_rule": label,
                "deployment_id": "dep_" + "d" * 32,
                "traffic": [{"version": f"v{serve}", "weight": 100}],
                "rules": [],
                "versions": [
                    version(1, "v1 for {{company}}."),
                    version(2, "v2 for {{company}}!"),
                ],
            }
        ],
    }


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (generously) for a condition the background makes true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


async def async_wait_until(condition: Callable[[], bool], limit: float = 20.0) -> None:
    """``wait_until`` on the event loop (``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class FakeServer:
    """The SDK routes of a promptline server, in memory."""

    def __init__(self) -> None:
        self.config = make_config()
        self.up = True
        self.stream_up = True
        self.hang = threading.Event()
        """While set, config requests wait (until it is cleared) before answering."""
        self.requests: list[httpx.Request] = []
        self.config_answers: list[int] = []
        self.events: list[dict[str, Any]] = []
        self.streams_opened = 0
        self.streams_ended = 0
        self._generation = 0
        self._lock = threading.Lock()

    def publish(self, config: dict[str, Any]) -> None:
        """A deploy: a new configuration; open streams announce its ETag."""
        with self._lock:
            self.config = config
            self._generation += 1

    @property
    def etag(self) -> str:
        return str(self.config["etag"])

    def _refuse(self, request: httpx.Request) -> None:
        if not self.up:
            raise httpx.ConnectError("the server is down", request=request)

    def _config(self, request: httpx.Request) -> httpx.Response:
        while self.hang.is_set():
            time.sleep(0.01)
        self._refuse(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"error": {"code": "unauthorized"}})
        if request.headers.get("if-none-match") == self.etag:
            self.config_answers.append(304)
            return httpx.Response(304, headers={"ETag": self.etag})
        self.config_answers.append(200)
        return httpx.Response(200, json=self.config, headers={"ETag": self.etag})

    def _batch(self, request: httpx.Request) -> httpx.Response:
        self._refuse(request)
        events = json.loads(request.content)["events"]
        self.events.extend(events)
        results = [
            {"index": index, "type": event["type"], "status": 204, "event_id": f"e{index}"}
            for index, event in enumerate(events)
        ]
        return httpx.Response(
            200, json={"results": results, "accepted": len(events), "rejected": 0}
        )

    def _stream_lines(self) -> Iterator[bytes]:
        """``config`` at once and after each publish, a ping between; ends when down."""
        seen = -1
        try:
            while self.up and self.stream_up:
                with self._lock:
                    generation, etag = self._generation, self.etag
                if generation != seen:
                    seen = generation
                    yield b"event: config\ndata: " + json.dumps({"etag": etag}).encode() + b"\n\n"
                else:
                    yield b": ping\n\n"
                    time.sleep(0.02)
        finally:
            self.streams_ended += 1

    def handle(self, request: httpx.Request) -> httpx.Response:
        """The synchronous transport's handler."""
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/sdk/config":
            return self._config(request)
        if path == "/api/v1/events/batch":
            return self._batch(request)
        if path == "/v1/sdk/stream":
            self._refuse(request)
            if not self.stream_up:
                return httpx.Response(503, headers={"Retry-After": "0"})
            self.streams_opened += 1
            return httpx.Response(
                200, headers={"Content-Type": "text/event-stream"}, content=self._stream_lines()
            )
        return httpx.Response(404)

    async def _astream_lines(self) -> AsyncIterator[bytes]:
        seen = -1
        while self.up and self.stream_up:
            generation, etag = self._generation, self.etag
            if generation != seen:
                seen = generation
                yield b"event: config\ndata: " + json.dumps({"etag": etag}).encode() + b"\n\n"
            else:
                yield b": ping\n\n"
                await asyncio.sleep(0.02)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        """The asynchronous transport's handler."""
        if request.url.path == "/v1/sdk/stream":
            self.requests.append(request)
            self._refuse(request)
            if not self.stream_up:
                return httpx.Response(503, headers={"Retry-After": "0"})
            self.streams_opened += 1
            return httpx.Response(
                200, headers={"Content-Type": "text/event-stream"}, content=self._astream_lines()
            )
        while self.hang.is_set():  # noqa: ASYNC110 (a threading.Event, set by the test)
            await asyncio.sleep(0.01)
        await request.aread()
        return self.handle(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.ahandle)

    def exposures(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == "exposure"]
