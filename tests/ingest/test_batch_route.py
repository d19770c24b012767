"""``POST /api/v1/events/batch``: one result per event, 207 when some fail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.batch_keys import content_digest
from ingest.context import EdgeContext, EdgeLimits
from ingest.producer import Outgoing
from ingest.quota import MemoryQuota, month_of
from tests.ingest.conftest import Client
from tests.ingest.support import (
    HASH_1,
    ORG,
    PROMPT,
    PROMPT_NAME,
    FakeProducer,
    auth,
    edge_app,
)

URL = "/api/v1/events/batch"
TRACE = uuid.uuid4()
SIGNAL = {"type": "signal", "prompt_id": PROMPT_NAME, "value": "positive"}
USAGE = {"type": "usage", "name": PROMPT_NAME, "version": 1, "trace_id": str(TRACE)}
ANALYTICS = {"type": "analytics", "prompt_id": str(PROMPT), "version_hash": HASH_1}


async def test_all_good_is_200_with_results_in_order_and_keys_in_records(
    client: Client, producer: FakeProducer
) -> None:
    events = [
        {**SIGNAL, "idempotency_key": "s-1", "metadata": {"a": 1}},
        USAGE,
        {**ANALYTICS, "latency_ms": 3, "idempotency_key": "a-1"},
        {**SIGNAL, "value": "negative"},
    ]
    response = await client.post(
        URL, json={"events": events}, headers={**auth(), "Idempotency-Key": "batch-9"}
    )
    assert response.status == 200
    body = await response.json()
    assert (body["accepted"], body["rejected"]) == (4, 0)
    results = body["results"]
    assert [(r["index"], r["type"], r["status"]) for r in results] == [
        (0, "signal", 201),
        (1, "usage", 201),
        (2, "analytics", 204),
        (3, "signal", 201),
    ]
    assert all("error" not in r for r in results)
    assert isinstance(results[0]["id"], int) and results[3]["id"] > results[0]["id"]
    assert "id" not in results[1] and "id" not in results[2]

    # One call: every record handed over first, acknowledgements awaited together.
    assert producer.calls == [4]
    by_event = {record["event_id"]: record for record in producer.records()}
    assert set(by_event) == {r["event_id"] for r in results}
    first, link, call, second = (by_event[r["event_id"]] for r in results)
    assert first["idempotency_key"] == "s-1" and first["signal_id"] == results[0]["id"]
    assert first["metadata"] == {"a": 1}
    assert link["idempotency_key"] == f"usage:{PROMPT}:1:{TRACE}:"
    assert call["idempotency_key"] == "a-1" and call["latency_ms"] == 3
    assert second["idempotency_key"] == f"batch-9:{content_digest(events[3])}"
    assert second["value"] == "negative"
    topics = sorted(r.topic for r in producer.sent)
    assert topics == ["t.analytics.v1", "t.signals.v1", "t.signals.v1", "t.usage.v1"]


async def test_mixed_batch_is_207_and_each_failure_says_what_is_wrong(
    client: Client, producer: FakeProducer
) -> None:
    events = [
        SIGNAL,
        {**SIGNAL, "value": "maybe"},
        {"type": "click"},
        "not an object",
        {**ANALYTICS, "latency_ms": -1},
        {**USAGE, "version": 9},
        {**SIGNAL, "prompt_id": "nope"},
        {**USAGE, "extra": 1},
        ANALYTICS,
    ]
    response = await client.post(URL, json={"events": events}, headers=auth())
    assert response.status == 207
    body = await response.json()
    assert (body["accepted"], body["rejected"]) == (2, 7)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(9))
    expected = [
        (201, None, None),
        (422, "validation_error", "value"),
        (422, "validation_error", "type"),
        (422, "validation_error", None),
        (400, "invalid_request", "latency_ms"),
        (404, "not_found", "version"),
        (404, "not_found", "prompt_id"),
        (422, "validation_error", "extra"),
        (204, None, None),
    ]
    for result, (status, code, field) in zip(results, expected, strict=True):
        assert result["status"] == status
        if code is None:
            assert "error" not in result and result["event_id"]
        else:
            assert result["error"]["code"] == code and result["error"]["message"]
            assert result["error"].get("field") == field
    assert [r["type"] for r in results][:4] == ["signal", "signal", None, None]
    assert len(producer.sent) == 2
    assert "Retry-After" not in response.headers


async def test_events_kafka_refuses_get_503_results_and_signals_give_quota_back(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    producer.fails = lambda record: record.topic.endswith("signals.v1")
    response = await client.post(URL, json={"events": [SIGNAL, ANALYTICS, SIGNAL]}, headers=auth())
    assert response.status == 207
    assert response.headers["Retry-After"] == "1"
    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [503, 204, 503]
    assert results[0]["error"] == {
        "code": "unavailable",
        "message": results[0]["error"]["message"],
        "docs": "https://promptline.dev/docs/errors#unavailable",
        "retry_after": 1,
    }
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    assert quota.used[(ORG, month_of(datetime.now(UTC)))] == 0


async def test_signals_beyond_the_monthly_limit_get_429_results(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    month = month_of(datetime.now(UTC))
    quota.used[(ORG, month)] = 997
    events = [SIGNAL] * 5 + [ANALYTICS]
    response = await client.post(URL, json={"events": events}, headers=auth())
    assert response.status == 207
    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [201, 201, 201, 429, 429, 204]
    assert results[3]["error"]["code"] == "rate_limited"
    assert results[3]["error"]["retry_after"] >= 1
    assert quota.used[(ORG, month)] == 1000
    assert len(producer.records("signals.v1")) == 3


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{oops", 400, "invalid_request", None),
        (b"[]", 400, "invalid_request", None),
        ({}, 422, "validation_error", "events"),
        ({"events": []}, 422, "validation_error", "events"),
        ({"events": {"type": "signal"}}, 422, "validation_error", "events"),
        ({"events": [SIGNAL], "extra": 1}, 422, "validation_error", "extra"),
        ({"events": [SIGNAL] * 501}, 413, "payload_too_large", "events"),
    ],
)
async def test_bad_envelopes_accept_nothing(
    client: Client,
    producer: FakeProducer,
    body: bytes | dict[str, object],
    status: int,
    code: str,
    field: str | None,
) -> None:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(URL, data=data, headers=auth())
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code and error.get("field") == field
    assert producer.sent == []


async def test_batch_limits_come_from_the_context(producer: FakeProducer) -> None:
    app: web.Application = edge_app(producer, limits=EdgeLimits(batch_max_events=2))
    async with TestClient(TestServer(app)) as client:
        two = await client.post(URL, json={"events": [SIGNAL, SIGNAL]}, headers=auth())
        three = await client.post(URL, json={"events": [SIGNAL] * 3}, headers=auth())
        message = (await three.json())["error"]["message"]
    assert two.status == 200 and three.status == 413
    assert "at most 2 events" in message


async def test_unauthenticated_batch_is_401(client: Client, producer: FakeProducer) -> None:
    response = await client.post(URL, json={"events": [SIGNAL]})
    assert response.status == 401
    assert producer.sent == []


def _is_outgoing(value: object) -> bool:
    return isinstance(value, Outgoing)


async def test_large_valid_batch_goes_out_in_one_produce_call(
    client: Client, producer: FakeProducer
) -> None:
    events = [{**ANALYTICS, "idempotency_key": f"k{i}"} for i in range(500)]
    response = await client.post(URL, json={"events": events}, headers=auth())
    assert response.status == 200
    assert producer.calls == [500]
    assert all(_is_outgoing(record) for record in producer.sent)
    assert [r["idempotency_key"] for r in producer.records()] == [f"k{i}" for i in range(500)]
