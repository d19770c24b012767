"""``null`` for an optional field is the same as leaving the field out, on every edge body.

A client serialising an object with unset fields (``None``, ``undefined`` turned into
``null``) must not be refused for it; a required field is still required.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, PROMPT_NAME, FakeProducer, auth

TRACE = str(uuid.uuid4())
ANALYTICS = {"prompt_id": str(PROMPT), "version_hash": HASH_1}
USAGE = {"name": PROMPT_NAME, "version": 1, "trace_id": TRACE}
SIGNAL = {"value": "positive"}
ANALYTICS_NULLS = {"latency_ms": None, "cost_usd": None, "score": None, "idempotency_key": None}


def _without_stamps(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between any two sends (its id and receive time)."""
    return {k: v for k, v in record.items() if k not in {"event_id", "received_at", "signal_id"}}


async def _record_of(client: Client, producer: FakeProducer, url: str, body: Any) -> Any:
    response = await client.post(url, data=orjson.dumps(body), headers=auth())
    assert response.status in (201, 204), await response.text()
    return _without_stamps(producer.records()[-1])


@pytest.mark.parametrize(
    ("url", "bare", "nulls"),
    [
        ("/api/v1/prompts/analytics", ANALYTICS, ANALYTICS_NULLS),
        (f"/api/v1/prompts/{PROMPT_NAME}/signals", SIGNAL, {"metadata": None}),
        ("/dashboard/prompts/usage", USAGE, {"span_id": None}),
    ],
)
async def test_null_optional_fields_make_the_same_record_as_leaving_them_out(
    client: Client, producer: FakeProducer, url: str, bare: dict[str, Any], nulls: dict[str, Any]
) -> None:
    without = await _record_of(client, producer, url, bare)
    with_nulls = await _record_of(client, producer, url, {**bare, **nulls})
    assert with_nulls == without
    assert not set(nulls) & set(with_nulls)  # the record leaves them out, as when not sent


async def test_null_optional_fields_of_batch_events_are_absent_too(
    client: Client, producer: FakeProducer
) -> None:
    events = [
        {"type": "analytics", **ANALYTICS, **ANALYTICS_NULLS},
        {"type": "signal", "prompt_id": PROMPT_NAME, **SIGNAL, "metadata": None},
        {"type": "signal", "prompt_id": PROMPT_NAME, **SIGNAL, "idempotency_key": None},
        {"type": "usage", **USAGE, "span_id": None, "idempotency_key": None},
    ]
    response = await client.post(
        "/api/v1/events/batch", data=orjson.dumps({"events": events}), headers=auth()
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["accepted"] == len(events)
    records = [_without_stamps(record) for record in producer.records()]
    assert [record["kind"] for record in records] == ["analytics", "signal", "signal", "usage"]
    for record in records[:3]:
        assert not {"latency_ms", "cost_usd", "score", "metadata", "idempotency_key"} & set(record)
    assert "span_id" not in records[3]


@pytest.mark.parametrize(
    ("url", "body", "field", "status"),
    [
        ("/api/v1/prompts/analytics", {**ANALYTICS, "prompt_id": None}, "prompt_id", 400),
        ("/api/v1/prompts/analytics", {**ANALYTICS, "version_hash": None}, "version_hash", 400),
        (f"/api/v1/prompts/{PROMPT_NAME}/signals", {"value": None}, "value", 422),
        ("/dashboard/prompts/usage", {**USAGE, "trace_id": None}, "trace_id", 422),
    ],
)
async def test_null_for_a_required_field_is_still_refused(
    client: Client, producer: FakeProducer, url: str, body: Any, field: str, status: int
) -> None:
    response = await client.post(url, data=orjson.dumps(body), headers=auth())
    assert response.status == status
    assert (await response.json())["error"]["field"] == field
    assert producer.sent == []
