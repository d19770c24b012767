"""A body in a coding the server does not take is a JSON 415 on every route that reads one.

The whole service is served (edge and control plane, as ``promptline serve`` builds it)
over a SQLite store and no Kafka: each refused request is answered before its body is
read, and the same body sent without a coding then reaches the route (the edge's routes
answer 503 there, Kafka being absent; the edge tests below use a fake producer instead).
"""

from __future__ import annotations

import gzip
import importlib
import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from controlplane.store.migrate import upgrade
from ingest.context import EdgeLimits
from promptline.commands.admin import quickstart
from promptline.devstack.services import free_port
from promptline.logs import AIOHTTP_SERVER_LOGGER
from promptline.server import create_app
from promptline.settings import Settings
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, FakeProducer, auth, edge_app

Body = Callable[[dict[str, Any]], dict[str, Any]]
PAGE = "https://app.example.com"

_brotli: Any = importlib.import_module("brotli")
_zstd: Any = importlib.import_module("backports.zstd")


def _analytics(demo: dict[str, Any]) -> dict[str, Any]:
    return {"prompt_id": demo["prompt_id"], "version_hash": demo["version_hash"]}


EDGE: dict[str, Body] = {
    "/api/v1/prompts/checkout-assistant/signals": lambda _demo: {"value": "positive"},
    "/dashboard/prompts/usage": lambda _demo: {
        "name": "checkout-assistant",
        "version": 1,
        "trace_id": str(uuid.uuid4()),
    },
    "/api/v1/prompts/analytics": _analytics,
    "/api/v1/events/batch": lambda demo: {"events": [{"type": "analytics", **_analytics(demo)}]},
}
CONTROL_PLANE: dict[str, Body] = {
    "/v1/resolve": lambda _demo: {"prompt": "checkout-assistant", "user_id": "usr_1"},
    "/v1/prompts": lambda _demo: {"name": "support-bot"},
    "/v1/prompts/checkout-assistant/versions": lambda _demo: {"content": "Hello {{store_name}}"},
    "/v1/prompts/checkout-assistant/deploy": lambda _demo: {
        "traffic": [{"version": "v1", "weight": 100}]
    },
    "/dashboard/prompts": lambda _demo: {"name": "classify", "version": 1, "content": "c"},
    "/dashboard/prompts/": lambda _demo: {"name": "classify", "version": 2, "content": "c"},
    "/api/v1/prompt-templates": lambda _demo: {"name": "support", "content": "c"},
}
UPPER_CASE = {"/api/v1/prompt-templates"}


def _refused(plain: bytes) -> list[tuple[CIMultiDict[str], bytes, bool]]:
    """(headers, body, closes) for codings the server refuses.

    ``br`` and ``zstd`` bodies are real, decodable ones: they are refused for their
    coding, not for failing to decode. Other codings carry the plain body, which aiohttp
    hands over as sent: without the check, the route would take it as a plain body.
    """

    def coding(*values: str) -> CIMultiDict[str]:
        return CIMultiDict([("Content-Encoding", value) for value in values])

    return [
        (coding("br"), _brotli.compress(plain), True),
        (coding("br"), plain, True),  # not even brotli: still the 415, not a 400
        (coding("zstd"), _zstd.compress(plain), True),
        (coding("compress"), plain, False),
        (coding("x-gzip"), plain, False),
        (coding("gzip, br"), plain, False),
        (coding("identity, deflate"), plain, False),
        (coding("gzip", "br"), plain, True),
    ]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """The whole app over a SQLite store, with the demo prompt and a key of every scope."""
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        log_format="text",
    )
    await upgrade(settings.database_url)
    demo = await quickstart(settings)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, demo


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == AIOHTTP_SERVER_LOGGER and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("path", [*EDGE, *CONTROL_PLANE])
async def test_every_body_route_answers_an_unknown_coding_with_the_json_415(
    service: tuple[Client, dict[str, Any]], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    client, demo = service
    plain = orjson.dumps({**EDGE, **CONTROL_PLANE}[path](demo))
    code = "UNSUPPORTED_MEDIA_TYPE" if path in UPPER_CASE else "unsupported_media_type"
    base = {**auth(demo["api_key"]), "Content-Type": "application/json", "Origin": PAGE}
    with caplog.at_level(logging.DEBUG):
        for coding, body, closes in _refused(plain):
            headers = CIMultiDict(base)
            headers.extend(coding)
            async with client.post(path, data=body, headers=headers) as response:
                sent = coding.getall("Content-Encoding")
                assert response.status == 415, (sent, await response.text())
                assert response.content_type == "application/json"
                error = (await response.json())["error"]
                assert error["code"] == code
                assert error["field"] == "Content-Encoding"
                assert error["docs"].endswith(f"#{code}")
                assert "gzip, deflate or identity" in error["message"]
                assert response.headers["Accept-Encoding"] == "gzip, deflate, identity"
                assert (response.headers.get("Connection") == "close") is closes, sent
                cors = response.headers.get("Access-Control-Allow-Origin")
                assert cors == ("*" if path in EDGE else None)
        # The same body without a coding (or as identity) is the route's to answer.
        async with client.post(
            path, data=plain, headers={**base, "Content-Encoding": "identity"}
        ) as taken:
            expected = {"/api/v1/events/batch": 207, "/v1/resolve": 200}.get(
                path, 503 if path in EDGE else 201
            )
            assert taken.status == expected, await taken.text()
    assert _errors_logged(caplog) == []


async def test_resolve_takes_identity_gzip_and_deflate_bodies(
    service: tuple[Client, dict[str, Any]],
) -> None:
    """Resolve's fast path leaves every coded body to the checked read; the taken ones
    still resolve."""
    client, demo = service
    plain = orjson.dumps({"prompt": "checkout-assistant", "user_id": "usr_1"})
    for coding, body in [
        ("identity", plain),
        ("IDENTITY", plain),
        ("gzip", gzip.compress(plain)),
        ("deflate", zlib.compress(plain)),
    ]:
        headers = {**auth(demo["api_key"]), "Content-Encoding": coding}
        async with client.post("/v1/resolve", data=body, headers=headers) as response:
            assert response.status == 200, (coding, await response.text())
            assert (await response.json())["prompt"] == "checkout-assistant"


async def test_the_415_comes_after_authentication(
    service: tuple[Client, dict[str, Any]],
) -> None:
    client, _demo = service
    async with client.post(
        "/v1/resolve", data=b"{}", headers={"Content-Encoding": "br"}
    ) as response:
        assert response.status == 401


# The edge over a fake producer: a refused body produces nothing; a taken one is produced.

ANALYTICS = {"prompt_id": str(PROMPT), "version_hash": HASH_1, "latency_ms": 3.0}


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
async def test_a_refused_edge_body_produces_nothing_and_the_connection_serves_on(
    client: Client, producer: FakeProducer, coding: str
) -> None:
    plain = orjson.dumps(ANALYTICS)
    headers = {**auth(), "Content-Encoding": coding}
    refused = await client.post("/api/v1/prompts/analytics", data=plain, headers=headers)
    assert refused.status == 415
    assert (await refused.json())["error"]["code"] == "unsupported_media_type"
    assert producer.sent == []
    again = await client.post("/api/v1/prompts/analytics", data=plain, headers=auth())
    assert again.status == 204
    assert len(producer.sent) == 1


async def test_identity_edge_bodies_are_taken_as_sent(
    client: Client, producer: FakeProducer
) -> None:
    plain = orjson.dumps(ANALYTICS)
    for coding in ["identity", "Identity", "identity, identity"]:
        headers = {**auth(), "Content-Encoding": coding}
        response = await client.post("/api/v1/prompts/analytics", data=plain, headers=headers)
        assert response.status == 204, (coding, await response.text())
    assert len(producer.sent) == 3


async def test_a_refused_body_is_415_before_its_size_is_judged(producer: FakeProducer) -> None:
    """A declared length over the limit is 413 when plain, 415 in a refused coding."""
    app = edge_app(producer, limits=EdgeLimits(max_body_bytes=64))
    plain = orjson.dumps(ANALYTICS | {"padding": "x" * 100})
    async with TestClient(TestServer(app)) as small:
        for coding, status in [("compress", 415), ("identity", 413)]:
            headers = {**auth(), "Content-Encoding": coding}
            response = await small.post("/api/v1/prompts/analytics", data=plain, headers=headers)
            assert response.status == status, coding
    assert producer.sent == []
