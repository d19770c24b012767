"""Seed 000: ``POST /api/v1/prompts/:prompt_id/signals``, field by field and error by error."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from controlplane.ids import IdShape, encode
from ingest.context import EdgeContext
from ingest.quota import MemoryQuota, month_of
from ingest.signal_ids import MAX_SIGNAL_ID, decompose
from tests.ingest.conftest import Client
from tests.ingest.support import (
    ORG,
    OTHER_PROJECT_KEY,
    OTHER_PROMPT,
    PROJECT,
    PROMPT,
    PROMPT_NAME,
    READ_ONLY_KEY,
    FakeProducer,
    auth,
)

PMT = encode(IdShape.SIGNAL_PROMPT, PROMPT)
URL = f"/api/v1/prompts/{PMT}/signals"
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEED_BODY = {
    "value": "positive",
    "metadata": {"session_id": "sess_abc123", "user_id": "usr_456", "response_length": 342},
}


async def test_seed_example_is_201_with_data_and_one_record(
    client: Client, producer: FakeProducer
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await client.post(URL, json=SEED_BODY, headers=auth())
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"data"} and set(body["data"]) == {"id", "value", "created_at"}
    data = body["data"]
    assert isinstance(data["id"], int) and 0 < data["id"] <= MAX_SIGNAL_ID
    assert data["value"] == "positive"
    assert CREATED_AT.match(data["created_at"])
    created = datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))
    assert before <= created <= datetime.now(UTC)

    [sent] = producer.sent
    assert sent.topic == "t.signals.v1"
    assert sent.key == str(PROMPT).encode()
    record = orjson.loads(sent.value)
    assert record == {
        "v": 1,
        "kind": "signal",
        "event_id": record["event_id"],
        "received_at": record["received_at"],
        "org_id": str(ORG),
        "project_id": str(PROJECT),
        "signal_id": data["id"],
        "prompt_id": str(PROMPT),
        "value": "positive",
        "metadata": SEED_BODY["metadata"],
    }
    assert uuid.UUID(record["event_id"]).version == 7
    received = datetime.fromisoformat(record["received_at"].replace("Z", "+00:00"))
    assert received == created


@pytest.mark.parametrize(
    "reference",
    [
        PMT,
        encode(IdShape.PROMPT, PROMPT),
        encode(IdShape.TEMPLATE, PROMPT),
        str(PROMPT),
        PROMPT.hex,
        PROMPT_NAME,
    ],
)
async def test_prompt_is_found_by_any_id_shape_or_by_name(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(
        f"/api/v1/prompts/{reference}/signals", json={"value": "negative"}, headers=auth()
    )
    assert response.status == 201
    assert (await response.json())["data"]["value"] == "negative"
    [record] = producer.records()
    assert record["prompt_id"] == str(PROMPT) and record["value"] == "negative"
    assert "metadata" not in record and "idempotency_key" not in record


async def test_idempotency_key_header_goes_into_the_record(
    client: Client, producer: FakeProducer
) -> None:
    headers = {**auth(), "Idempotency-Key": "click-42"}
    response = await client.post(URL, json={"value": "positive"}, headers=headers)
    assert response.status == 201
    assert producer.records()[0]["idempotency_key"] == "click-42"


async def test_ids_are_unique_and_increase(client: Client, producer: FakeProducer) -> None:
    ids = []
    for _ in range(50):
        response = await client.post(URL, json={"value": "positive"}, headers=auth())
        ids.append((await response.json())["data"]["id"])
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert {decompose(signal_id)[1] for signal_id in ids} == {0}
    assert [r["signal_id"] for r in producer.records()] == ids


@pytest.mark.parametrize(
    ("url", "headers", "status", "code"),
    [
        (URL, {}, 401, "unauthorized"),
        (URL, {"Authorization": "Basic abc"}, 401, "unauthorized"),
        (URL, auth("pl_sk_nope"), 401, "unauthorized"),
        (URL, auth(READ_ONLY_KEY), 403, "forbidden"),
        (URL, auth(OTHER_PROJECT_KEY), 404, "not_found"),
        (
            f"/api/v1/prompts/{encode(IdShape.SIGNAL_PROMPT, OTHER_PROMPT)}/signals",
            auth(),
            404,
            "not_found",
        ),
        ("/api/v1/prompts/secret/signals", auth(), 404, "not_found"),
        (f"/api/v1/prompts/pmt_{uuid.uuid4().hex}/signals", auth(), 404, "not_found"),
        ("/api/v1/prompts/pmt_nothex/signals", auth(), 404, "not_found"),
    ],
)
async def test_auth_and_tenancy_errors(
    client: Client,
    producer: FakeProducer,
    url: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post(url, json={"value": "positive"}, headers=headers)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"]
    assert error["docs"].endswith(f"#{code}")
    if status == 404:
        assert error["field"] == "prompt_id"
    assert producer.sent == []


def _deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "words"),
    [
        (b"", 400, "invalid_request", None, "missing"),
        (b"{oops", 400, "invalid_request", None, "not valid JSON"),
        (b'["positive"]', 400, "invalid_request", None, "JSON object"),
        (b'{"value": 1e999}', 400, "invalid_request", "value", "must be a finite number"),
        ({"value": "meh"}, 422, "validation_error", "value", "'positive' or 'negative'"),
        ({"value": "Positive"}, 422, "validation_error", "value", "'positive' or 'negative'"),
        ({"value": 1}, 422, "validation_error", "value", "'positive' or 'negative'"),
        ({}, 422, "validation_error", "value", "required"),
        ({"value": "positive", "metdata": {}}, 422, "validation_error", "metdata", "not permitted"),
        ({"value": "positive", "metadata": []}, 422, "validation_error", "metadata", "dictionary"),
        ({"value": "positive", "metadata": "x"}, 422, "validation_error", "metadata", "dictionary"),
        (
            {"value": "positive", "metadata": {str(i): i for i in range(33)}},
            422,
            "validation_error",
            "metadata",
            "33 keys",
        ),
        (
            {"value": "positive", "metadata": _deep(6)},
            422,
            "validation_error",
            "metadata",
            "deeper than 5",
        ),
        (
            {"value": "positive", "metadata": {"text": "x" * 8200}},
            422,
            "validation_error",
            "metadata",
            "8192",
        ),
    ],
)
async def test_bad_bodies_name_what_is_wrong(
    client: Client,
    producer: FakeProducer,
    body: bytes | dict[str, object],
    status: int,
    code: str,
    field: str | None,
    words: str,
) -> None:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(URL, data=data, headers=auth())
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error.get("field") == field
    assert words in error["message"]
    assert producer.sent == []


async def test_metadata_at_the_limits_is_accepted(client: Client, producer: FakeProducer) -> None:
    metadata = {str(i): i for i in range(31)} | {"deep": _deep(4)}
    response = await client.post(
        URL, json={"value": "positive", "metadata": metadata}, headers=auth()
    )
    assert response.status == 201
    assert producer.records()[0]["metadata"] == metadata


async def test_bad_idempotency_key_is_422_naming_the_header(
    client: Client, producer: FakeProducer
) -> None:
    headers = {**auth(), "Idempotency-Key": "x" * 256}
    response = await client.post(URL, json={"value": "positive"}, headers=headers)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["field"] == "Idempotency-Key" and error["code"] == "validation_error"
    assert producer.sent == []


async def test_monthly_limit_is_429_rate_limited_with_retry_after(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    month = month_of(datetime.now(UTC))
    quota.used[(ORG, month)] = 999  # the free plan allows 1,000 a month
    first = await client.post(URL, json={"value": "positive"}, headers=auth())
    assert first.status == 201
    second = await client.post(URL, json={"value": "positive"}, headers=auth())
    assert second.status == 429
    error = (await second.json())["error"]
    assert error["code"] == "rate_limited" and "1000" in error["message"]
    assert int(second.headers["Retry-After"]) >= 1
    assert len(producer.sent) == 1
    assert quota.used[(ORG, month)] == 1000


async def test_kafka_refusal_is_503_and_gives_the_quota_back(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    producer.fails = lambda _record: True
    response = await client.post(URL, json={"value": "positive"}, headers=auth())
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "unavailable"
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    assert quota.used[(ORG, month_of(datetime.now(UTC)))] == 0
