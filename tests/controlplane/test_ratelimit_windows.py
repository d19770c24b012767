"""The in-memory moving windows behind the rate limiter, on a clock the test moves."""

from __future__ import annotations

import uuid

import pytest

from controlplane.api.ratelimit import Endpoint, LimitClass, RateLimiter
from controlplane.api.windows import MovingWindows
from controlplane.catalog import Principal
from promptline.http.errors import ApiError, ErrorKind

RESOLVE = Endpoint("POST /v1/resolve", LimitClass.RESOLVE)


class Clock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_counts_calls_of_the_last_seconds_and_says_when_one_frees() -> None:
    clock = Clock()
    windows = MovingWindows(clock)
    for offset in (0.0, 0.25, 0.5):
        clock.now = 1_000.0 + offset
        assert windows.hit("k", 3, 1) is None
    clock.now = 1_000.75
    assert windows.hit("k", 3, 1) == pytest.approx(0.25)  # the call at 1000.0 leaves first
    clock.now = 1_001.01
    assert windows.hit("k", 3, 1) is None  # moving, not fixed: one slot freed, one taken
    assert windows.hit("k", 3, 1) == pytest.approx(0.24)


def test_a_call_exactly_one_window_old_still_counts() -> None:
    clock = Clock()
    windows = MovingWindows(clock)
    assert windows.hit("k", 1, 60) is None
    clock.now += 60
    assert windows.hit("k", 1, 60) == 0.0
    clock.now += 0.001
    assert windows.hit("k", 1, 60) is None


def test_keys_are_independent_and_a_zero_limit_refuses_everything() -> None:
    windows = MovingWindows(Clock())
    assert windows.hit("a", 1, 1) is None
    assert windows.hit("b", 1, 1) is None
    assert windows.hit("a", 1, 1) is not None
    assert windows.hit("none", 0, 60) == 60


def test_idle_counters_are_swept_and_busy_ones_kept() -> None:
    clock = Clock()
    windows = MovingWindows(clock, sweep_seconds=10)
    windows.hit("idle", 5, 1)
    windows.hit("busy", 5, 3600)
    clock.now += 11
    windows.hit("new", 5, 1)
    assert len(windows) == 2  # "busy" still has a call in its hour; "idle" is gone
    assert windows.hit("busy", 1, 3600) is not None


def _principal(overrides: dict[str, str], key_id: uuid.UUID) -> Principal:
    return Principal(key_id, uuid.uuid4(), uuid.uuid4(), "free", frozenset(), overrides)


async def test_the_limiter_refuses_with_retry_after_and_follows_a_reloaded_principal() -> None:
    limiter = await RateLimiter.open()
    key_id = uuid.uuid4()
    try:
        before = _principal({"POST /v1/resolve": "1/minute"}, key_id)
        await limiter.check(before, RESOLVE)
        with pytest.raises(ApiError) as refused:
            await limiter.check(before, RESOLVE)
        assert refused.value.kind is ErrorKind.RATE_LIMITED
        assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 60
        # The catalog reloaded with a raised override: a new principal object, new limits.
        after = _principal({"POST /v1/resolve": "3/minute"}, key_id)
        await limiter.check(after, RESOLVE)
        await limiter.check(after, RESOLVE)
    finally:
        await limiter.close()


async def test_every_limit_of_an_override_must_allow_the_call() -> None:
    limiter = await RateLimiter.open()
    principal = _principal({"POST /v1/resolve": "3/minute;2/hour"}, uuid.uuid4())
    try:
        for _ in range(2):
            await limiter.check(principal, RESOLVE)
        with pytest.raises(ApiError) as refused:
            await limiter.check(principal, RESOLVE)
        assert "2 per hour" in refused.value.message
        assert refused.value.retry_after is not None and 60 < refused.value.retry_after <= 3600
        with pytest.raises(ApiError) as refused:  # the minute's limit counted the refused call
            await limiter.check(principal, RESOLVE)
        assert "3 per minute" in refused.value.message
    finally:
        await limiter.close()


def test_a_sweep_that_drops_counters_bumps_the_generation() -> None:
    clock = Clock()
    windows = MovingWindows(clock, sweep_seconds=10)
    held = windows.window("k", 1)
    assert held.hit(windows.tick(), 1) is None
    before = windows.generation
    clock.now += 5
    windows.tick()  # not due yet
    assert windows.generation == before
    clock.now += 6
    windows.tick()  # due: "k" is idle and dropped
    assert windows.generation == before + 1
    assert windows.window("k", 1) is not held


async def test_a_plan_refetches_its_counters_after_a_sweep() -> None:
    """Counters held by a cached plan are fetched again once a sweep dropped them, so the
    calls counted after the sweep are in the counter every later plan finds."""
    clock = Clock()
    limiter = RateLimiter()
    limiter._windows = MovingWindows(clock, sweep_seconds=10)
    principal = _principal({"POST /v1/resolve": "1/second"}, uuid.uuid4())
    assert limiter.count(principal, RESOLVE)
    clock.now += 11  # the counter is idle: the next call sweeps it
    assert limiter.count(principal, RESOLVE)
    limiter._plans.clear()  # as when the plan cache starts over
    with pytest.raises(ApiError):
        limiter.count(principal, RESOLVE)
