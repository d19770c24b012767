"""CORS on the edge's routes: preflights answered, and every answer readable by the page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest.cors import CORS_POLICY, CorsPolicy
from promptline.server import create_app
from promptline.settings import Settings
from tests.ingest.conftest import Client
from tests.ingest.support import FakeProducer, auth, edge_app

SIGNALS = "/api/v1/prompts/checkout-assistant/signals"
PAGE = "https://app.example.com"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}
EVENT_PATHS = [
    SIGNALS,
    "/dashboard/prompts/usage",
    "/dashboard/prompts/usage/",
    "/api/v1/prompts/analytics",
    "/api/v1/events/batch",
]


@pytest.fixture
async def listed(producer: FakeProducer) -> AsyncIterator[Client]:
    """An edge that allows only PAGE."""
    app = edge_app(producer, cors=CorsPolicy.parse(f"{PAGE}, http://localhost:3000"))
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize("path", EVENT_PATHS)
async def test_preflight_allows_any_origin_by_default_without_a_key(
    client: Client, producer: FakeProducer, path: str
) -> None:
    response = await client.options(path, headers=PREFLIGHT)
    assert response.status == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert int(headers["Access-Control-Max-Age"]) > 0
    assert producer.sent == []


async def test_answers_and_errors_carry_the_origin_and_expose_retry_after(
    client: Client, producer: FakeProducer
) -> None:
    ok = await client.post(SIGNALS, json={"value": "positive"}, headers={**auth(), "Origin": PAGE})
    assert ok.status == 201
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    assert ok.headers["Access-Control-Expose-Headers"] == "Retry-After"
    refused = await client.post(SIGNALS, json={"value": "positive"}, headers={"Origin": PAGE})
    assert refused.status == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    # Without an Origin (not a browser) nothing is added.
    plain = await client.post(SIGNALS, json={"value": "positive"}, headers=auth())
    assert "Access-Control-Allow-Origin" not in plain.headers


async def test_a_listed_origin_is_named_and_others_are_refused(
    listed: Client, producer: FakeProducer
) -> None:
    preflight = await listed.options(SIGNALS, headers=PREFLIGHT)
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PAGE
    assert preflight.headers["Vary"] == "Origin"
    answer = await listed.post(
        SIGNALS, json={"value": "positive"}, headers={**auth(), "Origin": PAGE}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in answer.headers.getall("Vary")

    stranger = {**PREFLIGHT, "Origin": "https://evil.example"}
    refused = await listed.options(SIGNALS, headers=stranger)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in refused.headers
    foreign = await listed.post(
        SIGNALS, json={"value": "positive"}, headers={**auth(), "Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def test_options_without_origin_says_what_the_route_takes(client: Client) -> None:
    response = await client.options(SIGNALS)
    assert response.status == 204
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_other_routes_get_no_cors_headers(client: Client) -> None:
    response = await client.get("/metrics", headers={"Origin": PAGE})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_an_empty_setting_turns_cors_off(producer: FakeProducer) -> None:
    app = edge_app(producer, cors=CorsPolicy.parse(""))
    async with TestClient(TestServer(app)) as client:
        preflight = await client.options(SIGNALS, headers=PREFLIGHT)
        answer = await client.post(
            SIGNALS, json={"value": "positive"}, headers={**auth(), "Origin": PAGE}
        )
    assert preflight.status == 405
    assert answer.status == 201
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_server_takes_its_policy_from_the_setting() -> None:
    app = create_app(Settings(edge_cors_origins=f"{PAGE},http://localhost:3000"))
    assert app[CORS_POLICY] == CorsPolicy(False, frozenset({PAGE, "http://localhost:3000"}))
    assert create_app(Settings())[CORS_POLICY].any_origin
    with pytest.raises(ValueError, match="edge_cors_origins"):
        Settings(edge_cors_origins=f"{PAGE}/")  # a trailing slash never matches an Origin
