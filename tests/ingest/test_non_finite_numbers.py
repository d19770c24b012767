"""NaN, Infinity and 1e999 are not JSON: a 400 that names the field holding them."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptline.http.bodies import read_json
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, FakeProducer, auth

PROMPT_JSON = f'"prompt_id": "{PROMPT}", "version_hash": "{HASH_1}"'


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/prompts/checkout-assistant/signals",
            '{"value": "positive", "metadata": {"scores": [1, 2, NaN]}}',
            "metadata.scores.2",
        ),
        (
            "/api/v1/prompts/checkout-assistant/signals",
            '{"value": "positive", "metadata": {"big": -1e400}}',
            "metadata.big",
        ),
        (
            "/api/v1/events/batch",
            '{"events": [{"type": "analytics", ' + PROMPT_JSON + "},"
            ' {"type": "analytics", ' + PROMPT_JSON + ', "score": Infinity}]}',
            "events.1.score",
        ),
        ("/api/v1/prompts/analytics", "{" + PROMPT_JSON + ', "cost_usd": -Infinity}', "cost_usd"),
    ],
)
async def test_non_finite_number_is_400_naming_its_field(
    client: Client, producer: FakeProducer, path: str, body: str, field: str
) -> None:
    response = await client.post(path, data=body.encode(), headers=auth())
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: must be a finite number")
    assert producer.sent == []


@pytest.mark.parametrize(
    "body",
    [
        '{"value": "NaN", "metadata": {oops}}',  # "NaN" in a string, broken elsewhere
        '{"value": "positive", "metadata": {"x": NaN}',  # NaN, and also cut short
    ],
)
async def test_other_malformed_json_keeps_the_parser_message(
    client: Client, producer: FakeProducer, body: str
) -> None:
    response = await client.post(
        "/api/v1/prompts/checkout-assistant/signals", data=body.encode(), headers=auth()
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["message"].startswith("Request body is not valid JSON")
    assert "field" not in error


async def test_control_plane_bodies_name_the_field_too() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request))

    app = web.Application(middlewares=[error_middleware(dialect_for)])
    app.router.add_post("/v1/resolve", echo)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/v1/resolve", data=b'{"attributes": {"n": 1e999}}')
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "attributes.n"
