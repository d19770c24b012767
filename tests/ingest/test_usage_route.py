"""Seed 002: ``POST /dashboard/prompts/usage`` links a trace (and span) to a prompt version."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.ingest.conftest import Client
from tests.ingest.support import (
    HASH_2,
    KEY,
    ORG,
    OTHER_PROJECT_KEY,
    PROJECT,
    PROMPT,
    PROMPT_NAME,
    READ_ONLY_KEY,
    FakeProducer,
    auth,
)

URL = "/dashboard/prompts/usage"
TRACE, SPAN = uuid.uuid4(), uuid.uuid4()
GOOD = {"name": PROMPT_NAME, "version": 2, "trace_id": str(TRACE), "span_id": str(SPAN)}


async def test_link_is_201_recorded_with_every_field_in_the_record(
    client: Client, producer: FakeProducer
) -> None:
    response = await client.post(URL, json=GOOD, headers=auth())
    assert response.status == 201
    assert await response.json() == {"status": "recorded"}
    [sent] = producer.sent
    assert sent.topic == "t.usage.v1" and sent.key == str(PROMPT).encode()
    record = orjson.loads(sent.value)
    assert uuid.UUID(record.pop("event_id")).version == 7
    assert record.pop("received_at").endswith("Z")
    assert record == {
        "v": 1,
        "kind": "usage",
        "org_id": str(ORG),
        "project_id": str(PROJECT),
        "prompt_id": str(PROMPT),
        "prompt_name": PROMPT_NAME,
        "version": 2,
        "version_hash": HASH_2,
        "trace_id": str(TRACE),
        "span_id": str(SPAN),
        "idempotency_key": f"usage:{PROMPT}:2:{TRACE}:{SPAN}",
    }


async def test_repeating_a_link_is_safe_and_carries_the_same_natural_key(
    client: Client, producer: FakeProducer
) -> None:
    for path in (URL, URL + "/"):
        response = await client.post(path, json=GOOD, headers=auth())
        assert response.status == 201
        assert await response.json() == {"status": "recorded"}
    first, second = producer.records()
    assert first["idempotency_key"] == second["idempotency_key"]
    assert first["event_id"] != second["event_id"]


async def test_span_is_optional_and_a_client_key_does_not_replace_the_natural_one(
    client: Client, producer: FakeProducer
) -> None:
    body = {"name": PROMPT_NAME, "version": 1, "trace_id": str(TRACE)}
    headers = {**auth(), "Idempotency-Key": "mine"}
    response = await client.post(URL, json=body, headers=headers)
    assert response.status == 201
    [record] = producer.records()
    assert "span_id" not in record
    assert record["idempotency_key"] == f"usage:{PROMPT}:1:{TRACE}:"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"", 400, "invalid_request", None),
        (b"{oops", 400, "invalid_request", None),
        (b"[1]", 400, "invalid_request", None),
        ({**GOOD, "name": "nope"}, 404, "not_found", "name"),
        ({**GOOD, "name": "secret"}, 404, "not_found", "name"),
        ({**GOOD, "version": 3}, 404, "not_found", "version"),
        ({**GOOD, "version": "2"}, 422, "validation_error", "version"),
        ({**GOOD, "version": 2.0}, 422, "validation_error", "version"),
        ({**GOOD, "version": True}, 422, "validation_error", "version"),
        ({**GOOD, "version": 0}, 422, "validation_error", "version"),
        ({**GOOD, "trace_id": "trace-1"}, 422, "validation_error", "trace_id"),
        ({**GOOD, "span_id": 7}, 422, "validation_error", "span_id"),
        ({**GOOD, "name": ""}, 422, "validation_error", "name"),
        ({**GOOD, "spanId": str(SPAN)}, 422, "validation_error", "spanId"),
        ({"version": 2, "trace_id": str(TRACE)}, 422, "validation_error", "name"),
        ({"name": PROMPT_NAME, "version": 2}, 422, "validation_error", "trace_id"),
    ],
)
async def test_bad_links_name_the_field(
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
    assert error["code"] == code and error["message"]
    assert error.get("field") == field
    assert producer.sent == []


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (None, 401, "unauthorized"),
        ("pl_sk_nope", 401, "unauthorized"),
        (READ_ONLY_KEY, 403, "forbidden"),
        (OTHER_PROJECT_KEY, 404, "not_found"),
    ],
)
async def test_auth_and_tenancy(
    client: Client, producer: FakeProducer, key: str | None, status: int, code: str
) -> None:
    headers = auth(key) if key else {}
    response = await client.post(URL, json=GOOD, headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert producer.sent == []


async def test_kafka_refusal_is_503(client: Client, producer: FakeProducer) -> None:
    producer.fails = lambda _record: True
    response = await client.post(URL, json=GOOD, headers=auth(KEY))
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
