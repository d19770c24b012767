"""Every number that reaches a column is refused outside its documented domain, or kept exact.

Analytics numbers (seed 004) and analytics events of a batch: 400 ``invalid_request``
naming the field; a usage link's ``version``: 422; a signal's ``metadata.version`` (and
the other metadata keys copied into columns): 422 naming the key. Accepted values reach
the Kafka record as the very same double (negative zero keeps its sign).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest

from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, PROMPT_NAME, FakeProducer, auth
from tests.support.extremes import ALL_EXTREMES, Extreme, bits
from workers.tables import signal_version

ANALYTICS_URL = "/api/v1/prompts/analytics"
BATCH_URL = "/api/v1/events/batch"
USAGE_URL = "/dashboard/prompts/usage"
SIGNALS_URL = f"/api/v1/prompts/{PROMPT_NAME}/signals"
EVENT = {"prompt_id": str(PROMPT), "version_hash": HASH_1}
TRACE = str(uuid.uuid4())
HASH = "sha256:" + "a" * 64


async def _post(client: Client, url: str, body: Any) -> tuple[int, Any]:
    """POST ``body`` as JSON: every double exactly (repr), integers of any size."""
    response = await client.post(url, data=json.dumps(body), headers=auth())
    raw = await response.read()
    return response.status, orjson.loads(raw) if raw else None


@pytest.mark.parametrize("case", ALL_EXTREMES, ids=str)
async def test_analytics_numbers_are_refused_outside_their_domain_or_kept_exact(
    client: Client, producer: FakeProducer, case: Extreme
) -> None:
    status, body = await _post(client, ANALYTICS_URL, {**EVENT, case.field: case.value})
    if not case.accepted:
        assert status == 400
        assert body["error"]["code"] == "invalid_request"
        assert body["error"]["field"] == case.field
        assert body["error"]["message"].startswith(f"{case.field}: must be 0, or from 1e-100")
        assert producer.sent == []
        return
    assert status == 204
    [record] = producer.records()
    assert bits(record[case.field]) == bits(case.value)


async def test_a_batch_judges_each_analytics_number_like_the_route_and_keeps_it_exact(
    client: Client, producer: FakeProducer
) -> None:
    events = [{"type": "analytics", **EVENT, c.field: c.value} for c in ALL_EXTREMES]
    status, body = await _post(client, BATCH_URL, {"events": events})
    assert status == 207
    records = {record["event_id"]: record for record in producer.records()}
    for case, result in zip(ALL_EXTREMES, body["results"], strict=True):
        if case.accepted:
            assert result["status"] == 204, case
            assert bits(records[result["event_id"]][case.field]) == bits(case.value), case
        else:
            assert result["status"] == 400, case
            assert result["error"]["code"] == "invalid_request", case
            assert result["error"]["field"] == case.field, case
    accepted = sum(case.accepted for case in ALL_EXTREMES)
    assert (body["accepted"], len(records)) == (accepted, accepted)
    assert body["rejected"] == len(ALL_EXTREMES) - accepted > 0


@pytest.mark.parametrize(
    ("raw", "field", "status"),
    [
        (b"86400000", "latency_ms", 204),  # a JSON integer is the same double
        (b"86400001", "latency_ms", 400),
        (b"1000001", "cost_usd", 400),
        (b"-1000000000", "score", 204),
        (b"18446744073709551616", "score", 400),  # past 64 bits: parsed as a double
        (b"1e-400", "latency_ms", 204),  # the nearest double is 0
        (b"true", "score", 400),
        (b'"5"', "latency_ms", 400),
    ],
)
async def test_json_spellings_of_numbers_are_judged_as_the_double_they_parse_to(
    client: Client, producer: FakeProducer, raw: bytes, field: str, status: int
) -> None:
    body = orjson.dumps(EVENT)[:-1] + b',"' + field.encode() + b'":' + raw + b"}"
    response = await client.post(ANALYTICS_URL, data=body, headers=auth())
    assert response.status == status
    if status == 204:
        [record] = producer.records()
        assert record[field] == orjson.loads(raw)
    else:
        assert (await response.json())["error"]["field"] == field


@pytest.mark.parametrize(
    ("version", "status"),
    [
        (1, 201),
        (2**31 - 1, 404),  # a version number the control plane could hold, but not this one
        (2**31, 422),
        (2**32 - 1, 422),
        (2**32, 422),
        (2**64 - 1, 422),
        (2**64, 422),  # parsed as a double: not an integer
        (0, 422),
        (-1, 422),
        (1.0, 422),
        (-0.0, 422),
    ],
)
async def test_a_usage_version_the_columns_cannot_hold_is_422_naming_version(
    client: Client, producer: FakeProducer, version: float, status: int
) -> None:
    link = {"name": PROMPT_NAME, "version": version, "trace_id": TRACE}
    got, body = await _post(client, USAGE_URL, link)
    assert got == status
    if status == 201:
        assert [record["version"] for record in producer.records()] == [version]
        return
    assert producer.sent == []
    expected = "not_found" if status == 404 else "validation_error"
    assert (body["error"]["code"], body["error"]["field"]) == (expected, "version")
    _, batch = await _post(client, BATCH_URL, {"events": [{"type": "usage", **link}]})
    [result] = batch["results"]
    assert (result["status"], result["error"]["field"]) == (status, "version")


GOOD_METADATA: list[tuple[dict[str, Any], tuple[int, str, str | None]]] = [
    ({"version": 1}, (1, "", None)),
    ({"version": 2**32 - 1}, (2**32 - 1, "", None)),
    ({"version": "4294967295"}, (2**32 - 1, "", None)),
    ({"version": "v7"}, (7, "", None)),
    ({"version": " V7 "}, (7, "", None)),
    ({"version": None, "version_hash": None, "trace_id": None}, (0, "", None)),
    ({"version_hash": HASH, "trace_id": TRACE}, (0, HASH, TRACE)),
    ({"release": 2**64 - 1, "other": -0.0, "tiny": 5e-324}, (0, "", None)),  # not copied
    # Seed 000's metadata is any object: values that name no version are the client's own.
    ({"version": "1.2.3", "version_hash": "abc", "trace_id": "4bf92f35"}, (0, "", None)),
    ({"version": True, "version_hash": 7, "trace_id": 12345}, (0, "", None)),
    ({"version": "", "trace_id": "not-a-uuid"}, (0, "", None)),
    ({"version": [4]}, (0, "", None)),
    ({"version": {"number": 4}}, (0, "", None)),
    ({"version": "v-1"}, (0, "", None)),
]


@pytest.mark.parametrize(("metadata", "named"), GOOD_METADATA)
async def test_metadata_naming_what_the_columns_hold_is_accepted_as_sent(
    client: Client,
    producer: FakeProducer,
    metadata: dict[str, Any],
    named: tuple[int, str, str | None],
) -> None:
    status, _ = await _post(client, SIGNALS_URL, {"value": "positive", "metadata": metadata})
    assert status == 201
    [record] = producer.records()
    assert orjson.dumps(record["metadata"]) == orjson.dumps(metadata)  # bits and key order
    number, digest, trace = signal_version(record["metadata"])
    assert (number, digest, str(trace) if trace else None) == named


BAD_METADATA: list[tuple[str, Any]] = [
    ("version", 0),
    ("version", 2**32),
    ("version", 2**64 - 1),
    ("version", 2**64),
    ("version", "4294967296"),
    ("version", "v0"),
    ("version", 4.0),
    ("version", -0.0),
    ("version", 1e-100),
    ("version_hash", "sha256:abc"),
    ("version_hash", HASH.upper()),
    ("version_hash", "SHA256:abc"),
]


@pytest.mark.parametrize(("key", "value"), BAD_METADATA)
async def test_metadata_naming_what_a_column_cannot_hold_is_422_naming_the_key(
    client: Client, producer: FakeProducer, key: str, value: Any
) -> None:
    metadata = {"session": "s-1", key: value}
    status, body = await _post(client, SIGNALS_URL, {"value": "positive", "metadata": metadata})
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["field"] == f"metadata.{key}"
    assert body["error"]["message"].startswith(f"metadata.{key}: must be")
    signal = {"type": "signal", "prompt_id": PROMPT_NAME, "value": "negative"}
    _, batch = await _post(client, BATCH_URL, {"events": [{**signal, "metadata": metadata}]})
    [result] = batch["results"]
    assert (result["status"], result["error"]["field"]) == (422, f"metadata.{key}")
    assert producer.sent == []
