"""Authorization headers whose bytes cannot be a key are 401 on every route, never 500.

aiohttp's client refuses to send such bytes, so the requests are written by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from controlplane import api
from controlplane.api.ratelimit import RateLimiter
from ingest.context import EDGE_CONTEXT
from tests.ingest.support import HASH_1, KEY, PROMPT, FakeProducer, edge_app

ANALYTICS = orjson.dumps({"prompt_id": str(PROMPT), "version_hash": HASH_1})
RESOLVE = orjson.dumps({"prompt": "checkout-assistant", "user_id": "u"})
TOKENS = [
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(KEY.encode() + b"\x80", id="key-then-stray-byte"),
    pytest.param("pl_sk_caf\u00e9".encode(), id="utf8-non-ascii"),
]


@pytest.fixture
async def server(producer: FakeProducer) -> AsyncIterator[TestServer]:
    """The edge and the control plane's routes over one in-memory catalog."""
    app = edge_app(producer)
    limiter = await RateLimiter.open()
    app[api.CONTROL_PLANE] = api.ControlPlane(catalog=app[EDGE_CONTEXT].catalog, limiter=limiter)
    api.add_routes(app)
    try:
        test_server = TestServer(app)
        await test_server.start_server()
        try:
            yield test_server
        finally:
            await test_server.close()
    finally:
        await limiter.close()


async def _post(server: TestServer, path: str, token: bytes, body: bytes) -> tuple[int, Any]:
    """POST with ``Authorization: Bearer <token bytes>``; the status and the JSON body."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (path.encode(), token, len(body), body)
        )
        await writer.drain()
        head, _, payload = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()
    return int(head.split(b" ")[1]), orjson.loads(payload) if payload else None


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/prompts/analytics", ANALYTICS), ("/v1/resolve", RESOLVE)],
    ids=["edge", "control-plane"],
)
async def test_undecodable_or_non_ascii_token_is_401(
    server: TestServer, producer: FakeProducer, path: str, body: bytes, token: bytes
) -> None:
    status, answer = await _post(server, path, token, body)
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    assert "invalid" in answer["error"]["message"]
    assert producer.sent == []


async def test_the_same_request_with_the_real_key_is_accepted(
    server: TestServer, producer: FakeProducer
) -> None:
    """The hand-written request is well formed: with a real key it gets through."""
    status, _answer = await _post(server, "/api/v1/prompts/analytics", KEY.encode(), ANALYTICS)
    assert status == 204
    assert len(producer.sent) == 1
