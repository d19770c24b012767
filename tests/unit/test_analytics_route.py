"""The analytics route against an in-memory catalog and a fake producer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import cast

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controlplane.catalog import Catalog, CatalogWatcher, Principal, PromptEntry, VersionEntry
from controlplane.keys import digest
from ingest.context import EDGE_CONTEXT, EdgeContext
from ingest.producer import EventProducer, ProduceFailed
from ingest.routes import analytics
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for

KEY, READ_ONLY_KEY, OTHER_PROJECT_KEY = "pl_sk_ingest", "pl_sk_read", "pl_sk_other"
PROJECT, OTHER_PROJECT, ORG = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PROMPT = uuid.uuid4()
HASH = "sha256:" + "a" * 64


class FakeProducer(EventProducer):
    connected = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    async def produce(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise ProduceFailed("broker down")
        self.sent.append((topic, key, value))


def _catalog() -> Catalog:
    def principal(project: uuid.UUID, scopes: set[str]) -> Principal:
        return Principal(uuid.uuid4(), project, ORG, "free", frozenset(scopes))

    version = VersionEntry(uuid.uuid4(), 1, HASH)
    return Catalog(
        revision=1,
        principals={
            digest(KEY): principal(PROJECT, {"ingest"}),
            digest(READ_ONLY_KEY): principal(PROJECT, {"read"}),
            digest(OTHER_PROJECT_KEY): principal(OTHER_PROJECT, {"ingest"}),
        },
        prompts={PROMPT: PromptEntry(PROMPT, PROJECT, "p", {1: version}, {HASH: version})},
    )


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
async def client(producer: FakeProducer) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    watcher = CatalogWatcher(sessions=cast("object", None))  # type: ignore[arg-type]
    watcher.current = _catalog()
    app = web.Application(middlewares=[error_middleware(dialect_for)])
    app[EDGE_CONTEXT] = EdgeContext(catalog=watcher, producer=producer, topic_prefix="p.")
    analytics.add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


GOOD = {"prompt_id": str(PROMPT), "version_hash": HASH, "latency_ms": 3, "cost_usd": 0.5}


async def test_accepted_event_is_produced_keyed_by_prompt(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    response = await client.post("/api/v1/prompts/analytics", json=GOOD, headers=_auth(KEY))
    assert response.status == 204
    [(topic, key, value)] = producer.sent
    assert topic == "p.analytics.v1"
    assert key == str(PROMPT).encode()
    record = orjson.loads(value)
    assert record["v"] == 1 and record["kind"] == "analytics"
    assert record["project_id"] == str(PROJECT) and record["org_id"] == str(ORG)
    assert record["latency_ms"] == 3 and record["cost_usd"] == 0.5 and "score" not in record
    assert uuid.UUID(record["event_id"]).version == 7


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
        (_auth("pl_sk_nope"), 401, "unauthorized"),
        (_auth(READ_ONLY_KEY), 403, "forbidden"),
        (_auth(OTHER_PROJECT_KEY), 404, "not_found"),
    ],
)
async def test_auth_and_tenancy_errors(
    client: TestClient[web.Request, web.Application],
    producer: FakeProducer,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post("/api/v1/prompts/analytics", json=GOOD, headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert producer.sent == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"", 400, None),
        (b"{oops", 400, None),
        (b"[]", 400, None),
        (orjson.dumps({**GOOD, "latency_ms": -1}), 400, "latency_ms"),
        (orjson.dumps({**GOOD, "prompt_id": 7}), 400, "prompt_id"),
        (orjson.dumps({**GOOD, "prompt_id": "x"}), 404, "prompt_id"),
        (orjson.dumps({**GOOD, "prompt_id": str(uuid.uuid4())}), 404, "prompt_id"),
        (orjson.dumps({**GOOD, "version_hash": "sha256:nope"}), 404, "version_hash"),
    ],
)
async def test_bad_bodies_get_clear_errors(
    client: TestClient[web.Request, web.Application],
    producer: FakeProducer,
    body: bytes,
    status: int,
    field: str | None,
) -> None:
    response = await client.post("/api/v1/prompts/analytics", data=body, headers=_auth(KEY))
    assert response.status == status
    error = (await response.json())["error"]
    assert error["message"]
    assert error.get("field") == field
    assert producer.sent == []


async def test_broker_failure_is_503_with_retry_after(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    producer.fail = True
    response = await client.post("/api/v1/prompts/analytics", json=GOOD, headers=_auth(KEY))
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "unavailable"
