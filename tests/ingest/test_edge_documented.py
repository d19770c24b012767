"""Real edge answers match what /openapi.json documents: status and body schema."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from promptline.http.openapi import build_document
from tests.ingest.conftest import Client
from tests.ingest.support import (
    HASH_1,
    KEY,
    PROMPT,
    PROMPT_NAME,
    READ_ONLY_KEY,
    auth,
)
from tests.support.documented import assert_documented

ANALYTICS = "/api/v1/prompts/analytics"
SIGNALS = "/api/v1/prompts/{prompt_id}/signals"
USAGE = "/dashboard/prompts/usage"
BATCH = "/api/v1/events/batch"
GOOD_ANALYTICS = {"prompt_id": str(PROMPT), "version_hash": HASH_1, "latency_ms": 412.5}
GOOD_USAGE = {"name": PROMPT_NAME, "version": 1, "trace_id": str(uuid.uuid4())}


async def test_every_edge_answer_is_documented(app: web.Application, client: Client) -> None:
    document = build_document(app)

    async def call(
        method: str, path: str, pattern: str, key: str | None = KEY, **kwargs: Any
    ) -> int:
        headers = (auth(key) if key is not None else {}) | kwargs.pop("headers", {})
        async with client.request(method, path, headers=headers, **kwargs) as response:
            raw = await response.read()
            body = await response.json() if raw and response.content_type.endswith("json") else None
            assert_documented(document, method, pattern, response.status, body)
            return response.status

    assert await call("POST", ANALYTICS, ANALYTICS, json=GOOD_ANALYTICS) == 204
    assert await call("POST", ANALYTICS, ANALYTICS, json={"latency_ms": "x"}) == 400
    assert await call("POST", ANALYTICS, ANALYTICS, None, json=GOOD_ANALYTICS) == 401
    assert await call("POST", ANALYTICS, ANALYTICS, READ_ONLY_KEY, json=GOOD_ANALYTICS) == 403
    unknown = GOOD_ANALYTICS | {"prompt_id": str(uuid.uuid4())}
    assert await call("POST", ANALYTICS, ANALYTICS, json=unknown) == 404

    signals = f"/api/v1/prompts/{PROMPT_NAME}/signals"
    assert await call("POST", signals, SIGNALS, json={"value": "positive"}) == 201
    assert await call("POST", signals, SIGNALS, json={"value": "meh"}) == 422
    assert await call("POST", signals, SIGNALS, data=b"[") == 400
    nothing = "/api/v1/prompts/nothing/signals"
    assert await call("POST", nothing, SIGNALS, json={"value": "negative"}) == 404

    assert await call("POST", USAGE, USAGE, json=GOOD_USAGE) == 201
    assert await call("POST", USAGE + "/", USAGE + "/", json=GOOD_USAGE | {"version": "1"}) == 422

    signal = {"type": "signal", "prompt_id": PROMPT_NAME, "value": "positive"}
    analytics = {"type": "analytics", **GOOD_ANALYTICS}
    assert await call("POST", BATCH, BATCH, json={"events": [signal, analytics]}) == 200
    mixed = {"events": [signal, {"type": "usage"}]}
    assert await call("POST", BATCH, BATCH, json=mixed) == 207
    assert await call("POST", BATCH, BATCH, json={"events": []}) == 422

    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert await call("OPTIONS", ANALYTICS, ANALYTICS, None, headers=preflight) == 204
    assert await call("GET", "/metrics", "/metrics", None) == 200
