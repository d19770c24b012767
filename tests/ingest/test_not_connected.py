"""While the producer has not reached Kafka, every event is 503 at once and costs no quota.

The real broker is in ``test_kafka_outage.py``; here the producer only says it is not
connected, to check each route's answer and that nothing else was touched on the way.
"""

from __future__ import annotations

from typing import Any

import pytest

from ingest.context import EdgeContext
from ingest.producer import Backoff, NotConnected
from ingest.quota import MemoryQuota
from ingest.resources import edge_producer
from promptline.settings import Settings
from tests.ingest.conftest import Client
from tests.ingest.support import HASH_1, PROMPT, PROMPT_NAME, FakeProducer, auth

ANALYTICS = {"prompt_id": str(PROMPT), "version_hash": HASH_1, "latency_ms": 3.0}
SIGNAL_URL = f"/api/v1/prompts/{PROMPT_NAME}/signals"
USAGE = {"name": PROMPT_NAME, "version": 1, "trace_id": "4b1e0000-0000-4000-8000-000000000000"}


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer(connected=False)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SIGNAL_URL, {"value": "positive"}),
        ("/dashboard/prompts/usage", USAGE),
        ("/api/v1/prompts/analytics", ANALYTICS),
    ],
)
async def test_single_event_routes_answer_503_unavailable_with_retry_after(
    client: Client, producer: FakeProducer, edge: EdgeContext, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body, headers=auth())
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    error = (await response.json())["error"]
    assert error["code"] == "unavailable" and "retry" in error["message"]
    assert producer.calls == []  # Kafka was not even tried
    assert isinstance(edge.quota, MemoryQuota) and edge.quota.used == {}


async def test_a_batch_gets_503_results_for_its_valid_events_and_4xx_for_the_rest(
    client: Client, producer: FakeProducer, edge: EdgeContext
) -> None:
    events = [
        {"type": "signal", "prompt_id": PROMPT_NAME, "value": "positive"},
        {"type": "analytics", **ANALYTICS, "latency_ms": -1},
        {"type": "analytics", **ANALYTICS},
    ]
    response = await client.post("/api/v1/events/batch", json={"events": events}, headers=auth())
    assert response.status == 207
    assert response.headers["Retry-After"] == "1"
    body = await response.json()
    assert [result["status"] for result in body["results"]] == [503, 400, 503]
    assert (body["accepted"], body["rejected"]) == (0, 3)
    assert producer.calls == []
    assert isinstance(edge.quota, MemoryQuota) and edge.quota.used == {}


async def test_a_bad_body_is_still_its_4xx(client: Client, producer: FakeProducer) -> None:
    response = await client.post(SIGNAL_URL, json={"value": "meh"}, headers=auth())
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "value"


async def test_readiness_check_fails_before_the_producer_has_started() -> None:
    producer = edge_producer(Settings())  # never started: not connected, and no broker asked
    try:
        assert not producer.connected
        with pytest.raises(NotConnected):
            await producer.check()
    finally:
        await producer.stop()


def test_backoff_doubles_from_first_to_most_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff(first=0.5, most=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (500, 4.0)]:
        for _ in range(20):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling
