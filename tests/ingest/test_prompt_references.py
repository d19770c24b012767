"""Every edge route that takes a prompt takes each id shape and the name, in the key's project.

Analytics (body ``prompt_id``), usage links (``name``) and the batch route's signal,
usage and analytics items resolve the reference as the signals route does; the records
carry the prompt's UUID whichever shape was sent, and another project's prompt is 404
naming the field in every shape.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from controlplane.ids import IdShape, encode
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, OTHER_PROMPT, PROMPT, PROMPT_NAME, FakeProducer, auth

ANALYTICS_URL = "/api/v1/prompts/analytics"
USAGE_URL = "/dashboard/prompts/usage"
BATCH_URL = "/api/v1/events/batch"
TRACE = uuid.uuid4()


def references(prompt: uuid.UUID, name: str) -> list[Any]:
    """The prompt in each shape a route must take: seed 001's, 000's, 003's ids, UUID, name."""
    return [
        pytest.param(encode(IdShape.PROMPT, prompt), id="prm"),
        pytest.param(encode(IdShape.SIGNAL_PROMPT, prompt), id="pmt"),
        pytest.param(encode(IdShape.TEMPLATE, prompt), id="tmpl"),
        pytest.param(str(prompt), id="uuid"),
        pytest.param(name, id="name"),
    ]


OURS = references(PROMPT, PROMPT_NAME)
THEIRS = references(OTHER_PROMPT, "secret")


def analytics(reference: str) -> dict[str, Any]:
    return {"prompt_id": reference, "version_hash": HASH_1, "latency_ms": 12.5}


def usage(reference: str) -> dict[str, Any]:
    return {"name": reference, "version": 1, "trace_id": str(TRACE)}


def batch_events(reference: str) -> list[dict[str, Any]]:
    return [
        {"type": "signal", "prompt_id": reference, "value": "positive"},
        {"type": "usage", **usage(reference)},
        {"type": "analytics", **analytics(reference)},
    ]


def sent_prompt_ids(producer: FakeProducer) -> list[str]:
    return [orjson.loads(record.value)["prompt_id"] for record in producer.sent]


@pytest.mark.parametrize("reference", OURS)
async def test_analytics_takes_every_shape(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(ANALYTICS_URL, json=analytics(reference), headers=auth())
    assert response.status == 204
    assert sent_prompt_ids(producer) == [str(PROMPT)]
    assert producer.sent[0].key == str(PROMPT).encode()


@pytest.mark.parametrize("reference", OURS)
async def test_usage_link_takes_every_shape(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(USAGE_URL, json=usage(reference), headers=auth())
    assert response.status == 201
    [record] = producer.records()
    assert (record["prompt_id"], record["prompt_name"]) == (str(PROMPT), PROMPT_NAME)


@pytest.mark.parametrize("reference", OURS)
async def test_batch_items_take_every_shape(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(
        BATCH_URL, json={"events": batch_events(reference)}, headers=auth()
    )
    assert response.status == 200
    assert (await response.json())["accepted"] == 3
    assert sent_prompt_ids(producer) == [str(PROMPT)] * 3


@pytest.mark.parametrize("reference", THEIRS)
async def test_another_projects_prompt_is_404_on_analytics(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(ANALYTICS_URL, json=analytics(reference), headers=auth())
    assert response.status == 404
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("not_found", "prompt_id")
    assert producer.sent == []


@pytest.mark.parametrize("reference", THEIRS)
async def test_another_projects_prompt_is_404_on_usage(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(USAGE_URL, json=usage(reference), headers=auth())
    assert response.status == 404
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("not_found", "name")
    assert producer.sent == []


@pytest.mark.parametrize("reference", THEIRS)
async def test_another_projects_prompt_is_404_in_every_batch_item(
    client: Client, producer: FakeProducer, reference: str
) -> None:
    response = await client.post(
        BATCH_URL, json={"events": batch_events(reference)}, headers=auth()
    )
    assert response.status == 207
    results = (await response.json())["results"]
    assert [(r["status"], r["error"]["code"], r["error"]["field"]) for r in results] == [
        (404, "not_found", "prompt_id"),
        (404, "not_found", "name"),
        (404, "not_found", "prompt_id"),
    ]
    assert producer.sent == []


async def test_usage_takes_opentelemetry_trace_and_span_ids(
    client: Client, producer: FakeProducer
) -> None:
    body = {
        "name": PROMPT_NAME,
        "version": 1,
        "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
        "span_id": "00f067aa0ba902b7",
    }
    response = await client.post(USAGE_URL, json=body, headers=auth())
    assert response.status == 201
    [record] = producer.records()
    assert record["trace_id"] == "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    assert record["span_id"] == "00000000-0000-0000-00f0-67aa0ba902b7"


@pytest.mark.parametrize("span", ["00f067aa0ba902b", "00f067aa0ba902b7a", "00f067aa0ba902bz"])
async def test_other_span_spellings_are_422(
    client: Client, producer: FakeProducer, span: str
) -> None:
    response = await client.post(
        USAGE_URL, json={**usage(PROMPT_NAME), "span_id": span}, headers=auth()
    )
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "span_id"
    assert producer.sent == []
