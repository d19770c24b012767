"""Seed 004 on the shared pipeline: what the refactor added beyond tests/unit's route test."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, FakeProducer, auth

URL = "/api/v1/prompts/analytics"
GOOD = {"prompt_id": str(PROMPT), "version_hash": HASH_1, "latency_ms": 412.5, "score": 0.9}


async def test_accepted_event_is_204_and_carries_every_field(
    client: Client, producer: FakeProducer
) -> None:
    headers = {**auth(), "Idempotency-Key": "call-7"}
    response = await client.post(URL, json={**GOOD, "cost_usd": 0, "extra": 1}, headers=headers)
    assert response.status == 204
    assert await response.read() == b""
    [sent] = producer.sent
    assert sent.topic == "t.analytics.v1"
    record = orjson.loads(sent.value)
    assert record["kind"] == "analytics" and record["version_hash"] == HASH_1
    assert (record["latency_ms"], record["cost_usd"], record["score"]) == (412.5, 0, 0.9)
    assert record["idempotency_key"] == "call-7"
    assert "extra" not in record


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latency_ms": "412"}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"cost_usd": -0.5}, "cost_usd"),
        ({"score": "high"}, "score"),
        ({"prompt_id": ["checkout-assistant"]}, "prompt_id"),
        ({"version_hash": 5}, "version_hash"),
    ],
)
async def test_wrong_types_are_400_invalid_request_naming_the_field(
    client: Client, producer: FakeProducer, change: dict[str, object], field: str
) -> None:
    response = await client.post(URL, json={**GOOD, **change}, headers=auth())
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request" and error["field"] == field
    assert producer.sent == []


async def test_bad_idempotency_key_is_400_in_this_family(
    client: Client, producer: FakeProducer
) -> None:
    headers = {**auth(), "Idempotency-Key": "caf\u00e9".encode().decode("latin-1")}
    response = await client.post(URL, json=GOOD, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "Idempotency-Key"
    assert producer.sent == []


async def test_unknown_prompt_is_404(client: Client, producer: FakeProducer) -> None:
    response = await client.post(URL, json={**GOOD, "prompt_id": str(uuid.uuid4())}, headers=auth())
    assert response.status == 404
    assert producer.sent == []


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_non_finite_numbers_are_400(
    client: Client, producer: FakeProducer, number: bytes
) -> None:
    body = b'{"prompt_id": "%s", "version_hash": "%s", "latency_ms": %s}' % (
        str(PROMPT).encode(),
        HASH_1.encode(),
        number,
    )
    response = await client.post(URL, data=body, headers=auth())
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request" and error["field"] == "latency_ms"
    assert error["message"].startswith("latency_ms: must be a finite number")
    assert producer.sent == []


async def test_body_idempotency_key_goes_into_the_record(
    client: Client, producer: FakeProducer
) -> None:
    response = await client.post(URL, json={**GOOD, "idempotency_key": "call-9"}, headers=auth())
    assert response.status == 204
    [record] = producer.records()
    assert record["idempotency_key"] == "call-9"


async def test_header_and_body_key_may_agree_but_not_differ(
    client: Client, producer: FakeProducer
) -> None:
    body = {**GOOD, "idempotency_key": "call-9"}
    same = await client.post(URL, json=body, headers={**auth(), "Idempotency-Key": "call-9"})
    assert same.status == 204
    other = await client.post(URL, json=body, headers={**auth(), "Idempotency-Key": "call-8"})
    assert other.status == 400
    error = (await other.json())["error"]
    assert error["code"] == "invalid_request" and error["field"] == "idempotency_key"
    assert [record["idempotency_key"] for record in producer.records()] == ["call-9"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", 7])
async def test_bad_body_idempotency_key_is_400_naming_it(
    client: Client, producer: FakeProducer, key: object
) -> None:
    response = await client.post(URL, json={**GOOD, "idempotency_key": key}, headers=auth())
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request" and error["field"] == "idempotency_key"
    assert producer.sent == []
