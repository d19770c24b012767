"""Exposures a client reports in ``POST /api/v1/events/batch``: checked, keyed like resolve's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controlplane.ids import IdShape, encode
from ingest.context import ExposurePolicy
from promptline.units import unit_id
from schemas.records import ExposureRecord
from tests.ingest import support
from tests.ingest.conftest import Client
from tests.ingest.support import FakeProducer, auth, edge_app

URL = "/api/v1/events/batch"
DEPLOYMENT = uuid.uuid4()
EXPOSURE: dict[str, Any] = {
    "type": "exposure",
    "prompt_id": support.PROMPT_NAME,
    "version": 2,
    "traffic_rule": "canary-v2",
    "user_id": "usr_8f3k2a",
}


@pytest.fixture
async def as_given(producer: FakeProducer) -> AsyncIterator[Client]:
    """An edge that stores user ids as given and keeps exposures forever."""
    app: web.Application = edge_app(
        producer, exposures=ExposurePolicy(hashed=False, retention_days=0)
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _results(client: Client, events: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    response = await client.post(URL, json={"events": events}, headers=auth())
    body = await response.json()
    return response.status, body["results"]


async def test_an_exposure_becomes_the_documented_record(
    client: Client, producer: FakeProducer
) -> None:
    resolved = datetime(2026, 12, 6, 23, 0, 1, 234_567, tzinfo=UTC)
    resolved = min(resolved, datetime.now(UTC))  # within the retention whenever this runs
    event = {
        **EXPOSURE,
        "prompt_id": str(support.PROMPT),
        "version": "v2",
        "content_hash": support.HASH_2,
        "deployment_id": encode(IdShape.DEPLOYMENT, DEPLOYMENT),
        "split": True,
        "resolved_at": resolved.isoformat(),
        "idempotency_key": "sdk-1",
    }
    status, [result] = await _results(client, [event])
    assert status == 200 and result["status"] == 204 and result["type"] == "exposure"
    [sent] = producer.sent
    assert sent.topic == "t.exposures.v1" and sent.key == str(support.PROMPT).encode()
    record = ExposureRecord.model_validate_json(sent.value)
    assert str(record.event_id) == result["event_id"]
    assert (record.prompt_id, record.version, record.version_hash) == (
        support.PROMPT,
        2,
        support.HASH_2,
    )
    assert (record.deployment_id, record.rule, record.by_split) == (DEPLOYMENT, "canary-v2", True)
    assert record.unit_id == unit_id(b"", "usr_8f3k2a") != "usr_8f3k2a"
    assert (record.source, record.idempotency_key) == ("client", "sdk-1")
    assert record.received_at == resolved.replace(microsecond=234_000)


async def test_defaults_never_deployed_split_false_now_and_the_batch_key(
    client: Client, producer: FakeProducer
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await client.post(
        URL,
        json={"events": [{**EXPOSURE, "version": 1, "traffic_rule": "latest"}]},
        headers={**auth(), "Idempotency-Key": "b-1"},
    )
    assert response.status == 200
    [record] = producer.records("exposures.v1")
    assert "deployment_id" not in record and record["by_split"] is False
    assert record["version_hash"] == support.HASH_1 and record["rule"] == "latest"
    assert record["idempotency_key"].startswith("b-1:")
    assert datetime.fromisoformat(record["received_at"]) >= before


async def test_the_unit_id_as_given_and_no_retention_bound(
    as_given: Client, producer: FakeProducer
) -> None:
    old = {**EXPOSURE, "resolved_at": "1999-01-01T00:00:00Z"}
    status, results = await _results(as_given, [old, {**old, "resolved_at": "1969-12-31"}])
    assert status == 207 and [r["status"] for r in results] == [204, 422]
    assert results[1]["error"]["field"] == "resolved_at"
    [record] = producer.records("exposures.v1")
    assert record["unit_id"] == "usr_8f3k2a" and record["received_at"].startswith("1999-01-01")


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


REFUSED: list[tuple[dict[str, Any], int, str, str]] = [
    ({"version": 0}, 422, "validation_error", "version"),
    ({"version": "two"}, 422, "validation_error", "version"),
    ({"version": True}, 422, "validation_error", "version"),
    ({"version": 2**31}, 422, "validation_error", "version"),
    ({"version": 9}, 404, "not_found", "version"),
    ({"prompt_id": "nope"}, 404, "not_found", "prompt_id"),
    ({"prompt_id": "secret"}, 404, "not_found", "prompt_id"),
    ({"content_hash": support.HASH_1}, 422, "validation_error", "content_hash"),
    ({"deployment_id": "dep_xyz"}, 422, "validation_error", "deployment_id"),
    ({"deployment_id": 7}, 422, "validation_error", "deployment_id"),
    ({"traffic_rule": None}, 422, "validation_error", "traffic_rule"),
    ({"traffic_rule": "r" * 201}, 422, "validation_error", "traffic_rule"),
    ({"user_id": ""}, 422, "validation_error", "user_id"),
    ({"user_id": "u" * 1001}, 422, "validation_error", "user_id"),
    ({"user_id": 42}, 422, "validation_error", "user_id"),
    ({"split": "yes"}, 422, "validation_error", "split"),
    ({"resolved_at": "yesterday"}, 422, "validation_error", "resolved_at"),
    ({"resolved_at": int(datetime.now(UTC).timestamp())}, 422, "validation_error", "resolved_at"),
    ({"resolved_at": _ago(days=-2)}, 422, "validation_error", "resolved_at"),
    ({"resolved_at": _ago(days=91)}, 422, "validation_error", "resolved_at"),
    ({"idempotency_key": "é"}, 422, "validation_error", "idempotency_key"),
    ({"unit_id": "u"}, 422, "validation_error", "unit_id"),
]


@pytest.mark.parametrize(("change", "status", "code", "field"), REFUSED)
async def test_a_bad_field_is_its_own_result_naming_it(
    client: Client,
    producer: FakeProducer,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    event = {key: value for key, value in {**EXPOSURE, **change}.items() if value is not None}
    response_status, results = await _results(client, [event, EXPOSURE])
    assert response_status == 207
    refused, accepted = results
    assert (refused["status"], refused["error"]["code"]) == (status, code)
    assert refused["error"]["field"] == field and refused["type"] == "exposure"
    assert accepted["status"] == 204 and len(producer.sent) == 1


async def test_a_day_ahead_and_the_retention_edge_are_taken(client: Client) -> None:
    events = [
        {**EXPOSURE, "resolved_at": _ago(hours=-23)},
        {**EXPOSURE, "resolved_at": _ago(days=89)},
        {**EXPOSURE, "resolved_at": datetime.now(UTC).replace(tzinfo=None).isoformat()},
    ]
    status, results = await _results(client, events)
    assert status == 200 and [r["status"] for r in results] == [204, 204, 204]


async def test_exposures_cost_no_signal_quota(producer: FakeProducer) -> None:
    catalog = support.build_catalog(overrides={"signals_per_month": 1})
    app = edge_app(producer, catalog)
    async with TestClient(TestServer(app)) as client:
        signal = {"type": "signal", "prompt_id": support.PROMPT_NAME, "value": "positive"}
        status, results = await _results(client, [signal, EXPOSURE, EXPOSURE, EXPOSURE])
        assert status == 200 and [r["status"] for r in results] == [201, 204, 204, 204]
        status, results = await _results(client, [EXPOSURE, signal])
        assert [r["status"] for r in results] == [204, 429]


async def test_one_key_twice_in_a_batch_is_one_exposure(
    client: Client, producer: FakeProducer
) -> None:
    keyed = {**EXPOSURE, "idempotency_key": "same"}
    status, results = await _results(client, [keyed, keyed])
    assert status == 200 and results[0]["event_id"] == results[1]["event_id"]
    assert len(producer.records("exposures.v1")) == 1
