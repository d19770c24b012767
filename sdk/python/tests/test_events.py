"""The event senders against a scripted batch route (``httpx.MockTransport``, no server).

Waits are bounded (``Edge.wait_for``) but nothing asserts how long anything took: the
tests that need time to pass inject a clock and a sleep that advances it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time as _time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from promptline_sdk._backoff import Backoff, parse_retry_after
from promptline_sdk.events import AsyncEventSender, EventSender

KEY = "pl_secret_key_1"
URL = "http://edge.test"
WAIT = 30.0  # a bound on waits for the sender's thread, never an expectation

Events = list[dict[str, Any]]
Answer = Callable[[Events], httpx.Response]


def accepted(events: Events) -> httpx.Response:
    results = [
        {"index": i, "type": e["type"], "status": 204, "event_id": str(uuid.uuid4())}
        for i, e in enumerate(events)
    ]
    return httpx.Response(200, json={"results": results, "accepted": len(events), "rejected": 0})


def failing(status: int, retry_after: str | None = None) -> Answer:
    def answer(events: Events) -> httpx.Response:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        body = {"error": {"code": "unavailable", "message": "Kafka did not acknowledge"}}
        return httpx.Response(status, json=body, headers=headers)

    return answer


def unreachable(events: Events) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


class Edge:
    """The batch route, scripted: the given answers in order, then 200 for everything."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[Events] = []
        self.arrived = threading.Condition()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and request.url.path == "/api/v1/events/batch"
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        events: Events = json.loads(request.content)["events"]
        with self.arrived:
            self.requests.append(events)
            answer = self.answers.pop(0) if self.answers else accepted
            self.arrived.notify_all()
        self.release.wait(WAIT)
        return answer(events)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        return self(request)

    def wait_for(self, requests: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= requests, WAIT)

    @property
    def keys(self) -> list[str]:
        return [event["idempotency_key"] for batch in self.requests for event in batch]

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.requests]


def eventually(check: Callable[[], bool]) -> None:
    """Wait (bounded) until ``check()`` holds: the sender's thread settles on its own time."""
    deadline = _time.monotonic() + WAIT
    while not check():
        assert _time.monotonic() < deadline
        _time.sleep(0.001)


class FakeTime:
    """A clock that only moves when the sender sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def sender(edge: Edge, **options: Any) -> EventSender:
    options.setdefault("flush_interval", 3600.0)  # only count, flush and close send
    options.setdefault("retry_base", 0.001)
    options.setdefault("retry_cap", 0.002)
    return EventSender(URL, KEY, transport=httpx.MockTransport(edge), **options)


def some_events(events: EventSender | AsyncEventSender, n: int) -> list[str]:
    kinds: list[Callable[[int], str]] = [
        lambda i: events.analytics("support-bot", "sha256:" + "a" * 64, latency_ms=float(i)),
        lambda i: events.signal("support-bot", "positive", metadata={"n": i}),
        lambda i: events.usage("support-bot", 1, uuid.uuid4()),
        lambda i: events.exposure("support-bot", 2, None, None, "latest", False, f"u{i}"),
    ]
    return [kinds[i % 4](i) for i in range(n)]


def test_a_key_is_a_uuid_made_with_the_event_or_the_callers() -> None:
    edge = Edge()
    with sender(edge) as events:
        made = events.analytics("p", "sha256:" + "a" * 64)
        given = events.signal("p", "negative", idempotency_key="click-1")
        usage = events.usage("p", 3, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert uuid.UUID(made).version == 8 and given == "click-1"
    assert edge.keys == [made, "click-1", usage]
    assert edge.requests[0][2] == {
        "type": "usage",
        "name": "p",
        "version": 3,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "idempotency_key": usage,
    }


def test_events_carry_their_routes_fields_and_nothing_unset() -> None:
    edge = Edge()
    resolved = datetime(2026, 12, 7, 1, 2, 3, 456_789, tzinfo=UTC)
    with sender(edge) as events:
        events.analytics("p", "sha256:h", cost_usd=0.5, idempotency_key="call-1")
        events.exposure("p", "v2", "sha256:c", "dep_1", "canary", True, "usr_1", resolved)
        events.exposure("p", 2, None, None, "latest", False, "usr_2")
    analytics, exposure, default = edge.requests[0]
    assert analytics == {
        "type": "analytics",
        "prompt_id": "p",
        "version_hash": "sha256:h",
        "cost_usd": 0.5,
        "idempotency_key": "call-1",
    }
    assert exposure["resolved_at"] == "2026-12-07T01:02:03.456"
    assert {k: exposure[k] for k in ("version", "content_hash", "deployment_id", "split")} == {
        "version": "v2",
        "content_hash": "sha256:c",
        "deployment_id": "dep_1",
        "split": True,
    }
    assert "content_hash" not in default and "deployment_id" not in default
    taken = datetime.fromisoformat(default["resolved_at"]).replace(tzinfo=UTC)
    assert abs(taken - datetime.now(UTC)) < timedelta(hours=1)  # the call's time, not retry's


def test_batches_go_by_count_and_the_rest_waits_for_time_or_flush() -> None:
    edge = Edge()
    events = sender(edge, batch_size=10)
    keys = some_events(events, 25)
    eventually(lambda: events.stats.sent == 20)
    assert edge.sizes == [10, 10] and events.stats.queued == 5
    assert events.flush(WAIT)
    assert edge.sizes == [10, 10, 5] and edge.keys == keys
    events.close()


def test_a_partial_batch_goes_when_the_interval_passes() -> None:
    edge = Edge()
    events = sender(edge, flush_interval=0.01)
    keys = some_events(events, 3)  # far fewer than batch_size, and no flush
    eventually(lambda: len(edge.keys) == 3)
    assert edge.keys == keys
    events.close()


def test_a_retried_request_carries_the_same_events_and_keys() -> None:
    edge = Edge(failing(503, "0"), unreachable, failing(500))
    events = sender(edge)
    keys = some_events(events, 8)
    assert events.flush(WAIT)
    assert edge.sizes == [8, 8, 8, 8]
    assert edge.requests[0] == edge.requests[1] == edge.requests[3]
    assert edge.keys == keys * 4
    stats = events.stats
    assert (stats.sent, stats.retried, stats.failed_batches, stats.queued) == (8, 24, 3, 0)
    events.close()


def test_retry_after_is_a_floor_under_the_backoff() -> None:
    time = FakeTime()
    edge = Edge(failing(503, "7"), failing(429, "120"))
    events = sender(edge, clock=time.clock, sleep=time.sleep)
    some_events(events, 2)
    assert events.flush(WAIT)
    assert len(time.sleeps) == 2
    assert 7 <= time.sleeps[0] <= 7 * 1.2 and 120 <= time.sleeps[1] <= 120 * 1.2
    assert events.stats.sent == 2
    events.close()


def test_a_207_retries_only_what_is_worth_retrying() -> None:
    def mixed(events: Events) -> httpx.Response:
        def refused(status: int, code: str, retry_after: int | None = None) -> dict[str, Any]:
            error: dict[str, Any] = {"code": code, "message": f"{code}!", "docs": "d"}
            if retry_after is not None:
                error["retry_after"] = retry_after
            return {"status": status, "error": error}

        outcomes = [
            {"status": 204, "event_id": "e0"},
            refused(503, "unavailable", 3),
            refused(422, "validation_error"),
            refused(429, "rate_limited", 40 * 86400),  # a monthly quota: not worth holding
            {"status": 201, "event_id": "e4", "id": 5},
            refused(404, "not_found"),
        ]
        results = [{"index": i, "type": "signal", **o} for i, o in enumerate(outcomes)]
        body = {"results": results, "accepted": 2, "rejected": 4}
        return httpx.Response(207, json=body, headers={"Retry-After": "3"})

    time = FakeTime()
    edge = Edge(mixed)
    events = sender(edge, clock=time.clock, sleep=time.sleep)
    keys = [events.signal("p", "positive") for _ in range(6)]
    assert events.flush(WAIT)
    assert edge.sizes == [6, 1] and edge.requests[1] == [edge.requests[0][1]]
    assert edge.requests[1][0]["idempotency_key"] == keys[1]
    assert time.sleeps and time.sleeps[0] >= 3
    stats = events.stats
    assert (stats.sent, stats.retried, stats.queued) == (3, 1, 0)
    assert stats.dropped == {"validation_error": 1, "rate_limited": 1, "not_found": 1}
    events.close()


def test_a_full_queue_drops_the_newest_counts_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    edge = Edge()
    edge.release.clear()  # the edge holds the first request
    events = sender(edge, batch_size=1, max_queue=3)
    first = events.analytics("p", "sha256:h")
    edge.wait_for(1)  # the sender holds the first event, the queue is empty
    with caplog.at_level(logging.WARNING, "promptline_sdk.events"):
        kept = some_events(events, 3)
        some_events(events, 2)
    assert events.stats.dropped_queue_full == 2 and events.stats.queued == 4
    edge.release.set()
    assert events.flush(WAIT)
    assert edge.keys == [first, *kept]
    assert events.stats.sent == 4 and events.stats.dropped == {"queue_full": 2}
    warnings = [r for r in caplog.records if "queue_full" in r.getMessage()]
    assert len(warnings) == 1  # then once a minute at most
    events.close()


def test_refused_requests_are_dropped_by_code_and_logged_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unauthorized(events: Events) -> httpx.Response:
        error = {"code": "unauthorized", "message": "Unknown API key.", "docs": "d"}
        return httpx.Response(401, json={"error": error})

    edge = Edge(unauthorized, unauthorized)
    events = sender(edge, batch_size=2)
    with caplog.at_level(logging.DEBUG, "promptline_sdk"):
        some_events(events, 4)
        assert events.flush(WAIT)
    assert events.stats.dropped == {"unauthorized": 4} and events.stats.sent == 0
    assert KEY not in caplog.text and "Unknown API key." in caplog.text
    events.close()


def test_a_batch_too_large_is_split_and_an_event_that_is_not_json_dropped() -> None:
    def too_large(events: Events) -> httpx.Response:
        if len(events) > 2:
            return httpx.Response(413, json={"error": {"code": "payload_too_large"}})
        return accepted(events)

    edge = Edge(*[too_large] * 10)
    events = sender(edge)
    keys = some_events(events, 3)
    events.analytics("p", "sha256:h", latency_ms=math.nan)
    events.signal("p", "positive", metadata={"when": object()})
    keys += some_events(events, 4)
    assert events.flush(WAIT)
    assert sorted(edge.sizes) == [1, 2, 2, 2, 3, 4, 7] and sorted(set(edge.keys)) == sorted(keys)
    assert events.stats.dropped == {"not_json": 2} and events.stats.sent == 7
    events.close()


def test_close_delivers_everything_then_refuses_more() -> None:
    edge = Edge(failing(503, "0"))
    events = sender(edge, batch_size=100)
    keys = some_events(events, 1000)
    assert events.close(WAIT)
    assert sorted(set(edge.keys)) == sorted(keys) and events.stats.sent == 1000
    events.analytics("p", "sha256:h")
    assert events.stats.dropped == {"closed": 1}


def test_flush_gives_up_after_its_timeout_and_keeps_the_events() -> None:
    edge = Edge(*[failing(503, "0")] * 1000)
    events = sender(edge, retry_base=0.01, retry_cap=0.01)
    some_events(events, 3)
    assert not events.flush(0.05)
    assert events.stats.queued == 3 and events.stats.failed_batches >= 1
    assert not events.close(0.05)


def test_backoff_doubles_to_its_cap_from_the_upper_half() -> None:
    high, low = Backoff(1.0, 8.0, rng=lambda: 1.0), Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert [high.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [low.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert low.delay(1, retry_after=30) == 30 and high.delay(1, retry_after=30) == 36
    assert high.delay(10_000) == 8.0


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    now = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0 and parse_retry_after(None) is None
    assert parse_retry_after("Mon, 07 Dec 2026 01:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 07 Dec 2026 00:00:30 GMT", now) == 0.0
    assert parse_retry_after("soon") is None


@pytest.mark.asyncio
async def test_the_async_sender_batches_retries_with_the_same_keys_and_closes() -> None:
    edge = Edge(failing(503, "0"), unreachable)
    events = AsyncEventSender(
        URL,
        KEY,
        transport=httpx.MockTransport(edge.handle_async),
        batch_size=10,
        flush_interval=3600.0,
        retry_base=0.001,
        retry_cap=0.002,
    )
    keys = some_events(events, 25)
    assert await events.flush(WAIT)
    assert edge.sizes[:2] == [10, 10] and sorted(edge.sizes[2:]) == [5, 10, 10]
    assert sorted(set(edge.keys)) == sorted(keys) and events.stats.sent == 25
    assert await events.aclose()
    events.usage("p", 1, uuid.uuid4())
    assert events.stats.dropped == {"closed": 1}


@pytest.mark.asyncio
async def test_the_async_sender_honours_retry_after_with_its_sleep() -> None:
    time = FakeTime()
    edge = Edge(failing(429, "9"))
    async with AsyncEventSender(
        URL,
        KEY,
        transport=httpx.MockTransport(edge.handle_async),
        flush_interval=3600.0,
        clock=time.clock,
        sleep=time.asleep,
    ) as events:
        keys = some_events(events, 4)
        assert await events.flush(WAIT)
    assert len(time.sleeps) == 1 and 9 <= time.sleeps[0] <= 9 * 1.2
    assert edge.keys == keys * 2


def test_an_async_sender_outlives_the_loop_it_started_on() -> None:
    edge = Edge()
    events = AsyncEventSender(
        URL, KEY, transport=httpx.MockTransport(edge.handle_async), flush_interval=3600.0
    )

    async def send(n: int) -> list[str]:
        keys = some_events(events, n)
        assert await events.flush(WAIT)
        return keys

    first = asyncio.run(send(2))  # the loop ends, and the sender's task with it
    second = asyncio.run(send(3))
    assert edge.keys == first + second
    assert asyncio.run(events.aclose())
