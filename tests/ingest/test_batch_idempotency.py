"""Idempotency inside the batch route: content-derived fallback keys, and repeated keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.batch_keys import content_digest
from ingest.context import EdgeContext
from ingest.producer import Outgoing
from ingest.quota import MemoryQuota, month_of
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, ORG, PROMPT, PROMPT_NAME, FakeProducer, auth

URL = "/api/v1/events/batch"
SIGNAL = {"type": "signal", "prompt_id": PROMPT_NAME, "value": "positive"}
ANALYTICS = {"type": "analytics", "prompt_id": str(PROMPT), "version_hash": HASH_1}


def _key_of(record: Outgoing) -> str:
    key: str = orjson.loads(record.value)["idempotency_key"]
    return key


async def _send(client: Client, events: list[Any], header: str | None = "b-1") -> dict[str, Any]:
    headers = {**auth(), **({"Idempotency-Key": header} if header else {})}
    response = await client.post(URL, json={"events": events}, headers=headers)
    assert response.status in (200, 207)
    body: dict[str, Any] = await response.json()
    return body


async def test_resending_only_the_refused_events_keeps_their_keys_and_collides_with_none(
    client: Client, producer: FakeProducer
) -> None:
    """The audit's case: an index-based key would give the resent event its neighbour's key."""
    first, second, third = (
        {**ANALYTICS, "latency_ms": 1.0},
        {**ANALYTICS, "latency_ms": 2.0},
        {**ANALYTICS, "latency_ms": 3.0},
    )
    attempted: list[str] = []

    def refuse_the_second(record: Outgoing) -> bool:
        attempted.append(_key_of(record))
        return bool(orjson.loads(record.value)["latency_ms"] == 2.0)

    producer.fails = refuse_the_second
    body = await _send(client, [first, second, third])
    assert [r["status"] for r in body["results"]] == [204, 503, 204]
    accepted = [_key_of(record) for record in producer.sent]

    producer.fails = lambda _record: False  # Kafka is back
    again = await _send(client, [second])  # only the refused one, same header
    assert [r["status"] for r in again["results"]] == [204]
    resent = _key_of(producer.sent[-1])
    assert resent == attempted[1] == f"b-1:{content_digest(second)}"
    assert resent not in accepted
    assert len({*accepted, resent}) == 3


async def test_fallback_keys_are_deterministic_and_tell_identical_events_apart(
    client: Client, producer: FakeProducer
) -> None:
    events = [SIGNAL, SIGNAL, {**SIGNAL, "value": "negative"}, SIGNAL]
    await _send(client, events)
    keys = [_key_of(record) for record in producer.sent]
    digest = content_digest(SIGNAL)
    assert keys == [
        f"b-1:{digest}",
        f"b-1:{digest}:1",
        f"b-1:{content_digest(events[2])}",
        f"b-1:{digest}:2",
    ]
    # Key order inside an event does not matter: its canonical JSON sorts them.
    reordered = dict(reversed(list(SIGNAL.items())))
    producer.sent.clear()
    await _send(client, [reordered, SIGNAL, {**SIGNAL, "value": "negative"}, SIGNAL])
    assert [_key_of(record) for record in producer.sent] == keys


async def test_invalid_neighbours_do_not_change_the_keys_of_valid_events(
    client: Client, producer: FakeProducer
) -> None:
    await _send(client, [{**SIGNAL, "value": "maybe"}, "junk", SIGNAL])
    await _send(client, [SIGNAL])
    assert [_key_of(record) for record in producer.sent] == [f"b-1:{content_digest(SIGNAL)}"] * 2


async def test_no_header_means_no_fallback_key(client: Client, producer: FakeProducer) -> None:
    await _send(client, [SIGNAL, ANALYTICS], header=None)
    assert [orjson.loads(r.value).get("idempotency_key") for r in producer.sent] == [None, None]


async def test_a_repeated_key_in_one_batch_is_one_event_charged_once(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    month = month_of(datetime.now(UTC))
    quota.used[(ORG, month)] = 998  # room for two signals

    events = [
        {**SIGNAL, "idempotency_key": "x"},
        {**SIGNAL, "idempotency_key": "x", "value": "negative"},  # the same event again
        {**SIGNAL, "idempotency_key": "y"},
        {**ANALYTICS, "idempotency_key": "x"},  # another kind: another event
    ]
    body = await _send(client, events)
    results = body["results"]
    assert [r["status"] for r in results] == [201, 201, 201, 204]
    assert (body["accepted"], body["rejected"]) == (4, 0)
    assert (results[1]["id"], results[1]["event_id"]) == (results[0]["id"], results[0]["event_id"])
    assert results[1]["index"] == 1
    assert quota.used[(ORG, month)] == 1000  # x once, y once
    signals = producer.records("signals.v1")
    assert [(r["idempotency_key"], r["value"]) for r in signals] == [
        ("x", "positive"),
        ("y", "positive"),
    ]
    assert [r["idempotency_key"] for r in producer.records("analytics.v1")] == ["x"]


async def test_a_repeat_shares_a_refusal_too(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    quota = edge.quota
    assert isinstance(quota, MemoryQuota)
    quota.used[(ORG, month_of(datetime.now(UTC)))] = 1000
    body = await _send(client, [{**SIGNAL, "idempotency_key": "x"}] * 2)
    assert [r["status"] for r in body["results"]] == [429, 429]
    assert producer.sent == []
