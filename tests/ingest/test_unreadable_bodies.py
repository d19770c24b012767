"""Bodies that cannot be read (wrong Content-Encoding, cut short) are 400s, never 500s."""

from __future__ import annotations

import gzip

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptline.http.bodies import read_json
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, PROMPT_NAME, FakeProducer, auth

ANALYTICS = {"prompt_id": str(PROMPT), "version_hash": HASH_1, "latency_ms": 3.0}
BODIES = {
    "/api/v1/prompts/checkout-assistant/signals": {"value": "positive"},
    "/dashboard/prompts/usage": {
        "name": PROMPT_NAME,
        "version": 1,
        "trace_id": "4b1e0000-0000-4000-8000-000000000000",
    },
    "/api/v1/prompts/analytics": ANALYTICS,
    "/api/v1/events/batch": {"events": [{"type": "analytics", **ANALYTICS}]},
}
GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


@pytest.mark.parametrize("path", list(BODIES))
async def test_plain_body_sent_as_gzip_is_400_invalid_request(
    client: Client, producer: FakeProducer, path: str
) -> None:
    response = await client.post(path, data=orjson.dumps(BODIES[path]), headers={**auth(), **GZIP})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert "Content-Encoding" in error["message"]
    # The connection cannot carry another request; the client is told not to reuse it.
    assert response.headers["Connection"] == "close"
    assert producer.sent == []
    again = await client.post(path, data=orjson.dumps(BODIES[path]), headers=auth())
    assert again.status in (200, 201, 204)


@pytest.mark.parametrize("path", list(BODIES))
async def test_real_gzip_body_is_decoded_and_accepted(
    client: Client, producer: FakeProducer, path: str
) -> None:
    body = gzip.compress(orjson.dumps(BODIES[path]))
    response = await client.post(path, data=body, headers={**auth(), **GZIP})
    assert response.status in (200, 201, 204), await response.text()
    assert len(producer.sent) == 1


async def test_control_plane_bodies_read_with_read_json_are_400_too() -> None:
    """``read_json`` (the control plane's reader) answers the same 400."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request))

    app = web.Application(middlewares=[error_middleware(dialect_for)])
    app.router.add_post("/v1/resolve", echo)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/v1/resolve", data=b'{"a": 1}', headers=GZIP)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_request"
        good = await client.post("/v1/resolve", data=gzip.compress(b'{"a": 1}'), headers=GZIP)
        assert (good.status, await good.json()) == (200, {"a": 1})
