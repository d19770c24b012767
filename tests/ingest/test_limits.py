"""Size limits (413 in the error envelope) and per-key request rates (429, Retry-After)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controlplane.api.ratelimit import RateLimiter
from ingest.context import EdgeLimits
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from tests.ingest.conftest import Client
from tests.ingest.support import (
    HASH_1,
    PROMPT,
    PROMPT_NAME,
    FakeProducer,
    auth,
    build_catalog,
    edge_app,
)

LIMIT = 2048
ROUTES = [
    "/api/v1/prompts/checkout-assistant/signals",
    "/dashboard/prompts/usage",
    "/api/v1/prompts/analytics",
    "/api/v1/events/batch",
]


@pytest.fixture
async def small(producer: FakeProducer) -> AsyncIterator[Client]:
    limits = EdgeLimits(max_body_bytes=LIMIT, batch_max_bytes=2 * LIMIT)
    async with TestClient(TestServer(edge_app(producer, limits=limits))) as client:
        yield client


def _limit_of(path: str) -> int:
    return 2 * LIMIT if path.endswith("/batch") else LIMIT


@pytest.mark.parametrize("path", ROUTES)
async def test_declared_oversize_body_is_413_envelope(
    small: Client, producer: FakeProducer, path: str
) -> None:
    body = b'{"value": "' + b"x" * _limit_of(path) + b'"}'
    response = await small.post(path, data=body, headers=auth())
    assert response.status == 413
    error = (await response.json())["error"]
    assert error["code"] == "payload_too_large"
    assert str(_limit_of(path)) in error["message"]
    assert producer.sent == []


@pytest.mark.parametrize("path", ROUTES)
async def test_streamed_oversize_body_is_413_envelope(
    small: Client, producer: FakeProducer, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(_limit_of(path) // 512 + 2):
            yield b" " * 512

    response = await small.post(path, data=chunks(), headers=auth())
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert producer.sent == []


async def test_aiohttp_client_max_size_is_rendered_as_the_envelope() -> None:
    """Routes that read with ``request.read()`` hit aiohttp's own limit: same envelope."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application(middlewares=[error_middleware(dialect_for)], client_max_size=1024)
    app.router.add_post("/v1/prompts", echo)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/v1/prompts", data=b"x" * 2048)
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"


SIGNAL_URL = "/api/v1/prompts/checkout-assistant/signals"
OVERRIDES = {
    "POST /api/v1/prompts/:prompt_id/signals": "2/minute",
    "POST /api/v1/events/batch": "1/minute",
}


@pytest.fixture
async def limited(producer: FakeProducer) -> AsyncIterator[Client]:
    limiter = await RateLimiter.open()
    app = edge_app(producer, build_catalog(overrides=OVERRIDES), limiter=limiter)
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        await limiter.close()


async def test_request_rate_over_the_key_limit_is_429_with_retry_after(
    limited: Client, producer: FakeProducer
) -> None:
    statuses = []
    for _ in range(3):
        response = await limited.post(SIGNAL_URL, json={"value": "positive"}, headers=auth())
        statuses.append(response.status)
    assert statuses == [201, 201, 429]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    error = (await response.json())["error"]
    assert error["code"] == "rate_limited" and "2 per" in error["message"]
    assert len(producer.sent) == 2

    # Each route has its own bucket: analytics still goes through, the batch has 1/minute.
    analytics = {"prompt_id": str(PROMPT), "version_hash": HASH_1}
    ok = await limited.post("/api/v1/prompts/analytics", json=analytics, headers=auth())
    assert ok.status == 204
    batch = {"events": [{"type": "signal", "prompt_id": PROMPT_NAME, "value": "negative"}]}
    first = await limited.post("/api/v1/events/batch", json=batch, headers=auth())
    second = await limited.post("/api/v1/events/batch", json=batch, headers=auth())
    assert (first.status, second.status) == (200, 429)
    assert "Retry-After" in second.headers


async def test_rate_limit_is_checked_before_the_body_is_read(
    limited: Client, producer: FakeProducer
) -> None:
    for _ in range(2):
        await limited.post(SIGNAL_URL, json={"value": "positive"}, headers=auth())
    response = await limited.post(SIGNAL_URL, data=b"{oops", headers=auth())
    assert response.status == 429


ONE_A_MINUTE = {
    "POST /api/v1/prompts/analytics": "1/minute",
    "POST /dashboard/prompts/usage": "1/minute",
}


@pytest.mark.parametrize(
    ("path", "body", "ok"),
    [
        ("/api/v1/prompts/analytics", {"prompt_id": str(PROMPT), "version_hash": HASH_1}, 204),
        (
            "/dashboard/prompts/usage",
            {"name": PROMPT_NAME, "version": 1, "trace_id": "4b1e0000-0000-4000-8000-00000000000a"},
            201,
        ),
    ],
)
async def test_analytics_and_usage_over_the_key_rate_are_429_with_retry_after(
    producer: FakeProducer, path: str, body: dict[str, object], ok: int
) -> None:
    limiter = await RateLimiter.open()
    app = edge_app(producer, build_catalog(overrides=ONE_A_MINUTE), limiter=limiter)
    try:
        async with TestClient(TestServer(app)) as client:
            first = await client.post(path, json=body, headers=auth())
            second = await client.post(path, json=body, headers=auth())
            assert (first.status, second.status) == (ok, 429)
            assert 1 <= int(second.headers["Retry-After"]) <= 60
            error = (await second.json())["error"]
            assert error["code"] == "rate_limited" and "1 per" in error["message"]
            assert len(producer.sent) == 1
    finally:
        await limiter.close()
