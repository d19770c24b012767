"""Redis rate limits: the checks of one tick go in one round trip and count exactly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from controlplane.api.ratelimit import Endpoint, LimitClass, RateLimiter
from controlplane.api.redis_windows import RedisWindows, WindowCheck
from controlplane.catalog import Principal
from promptline.http.errors import ApiError, ErrorKind

ANALYTICS = Endpoint("POST /api/v1/prompts/analytics", LimitClass.RESOLVE)

pytestmark = pytest.mark.redis


def _principal(limit: str) -> Principal:
    overrides = {ANALYTICS.name: limit}
    return Principal(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "free", frozenset(), overrides)


class CountedScript:
    """Wraps the limiter's script: how many calls reached Redis, with how many checks."""

    def __init__(self, windows: RedisWindows) -> None:
        self.calls: list[int] = []
        self._script = windows._script
        windows._script = self

    async def execute(self, keys: list[str], args: list[Any]) -> Any:
        self.calls.append(len(keys))
        return await self._script.execute(keys, args)


async def _outcomes(limiter: RateLimiter, principal: Principal, calls: int) -> list[Any]:
    checks = [limiter.check(principal, ANALYTICS) for _ in range(calls)]
    return list(await asyncio.gather(*checks, return_exceptions=True))


async def test_checks_of_one_tick_share_one_call_and_count_in_order(redis_url: str) -> None:
    limiter = await RateLimiter.open(redis_url)
    assert limiter._remote is not None
    script = CountedScript(limiter._remote)
    try:
        outcomes = await _outcomes(limiter, _principal("5/minute"), 12)
        assert outcomes[:5] == [None] * 5
        for refused in outcomes[5:]:
            assert isinstance(refused, ApiError)
            assert refused.kind is ErrorKind.RATE_LIMITED
            assert refused.retry_after is not None and 0 < refused.retry_after <= 60
        assert script.calls == [12]
    finally:
        await limiter.close()


async def test_processes_share_the_counts_and_the_first_refusing_window_answers(
    redis_url: str,
) -> None:
    first, second = await RateLimiter.open(redis_url), await RateLimiter.open(redis_url)
    principal = _principal("3/minute;4/hour")
    try:
        together = await asyncio.gather(
            _outcomes(first, principal, 2), _outcomes(second, principal, 2)
        )
        assert [outcome is None for outcome in together[0] + together[1]].count(True) == 3
        refused = [o for o in together[0] + together[1] if o is not None]
        assert len(refused) == 1 and "3 per minute" in refused[0].message
        await asyncio.sleep(0)
        # The minute's window refused the fourth, so the hour counted three: one more fits
        # the hour but not the minute, as when each window is checked call by call.
        [again] = await _outcomes(second, principal, 1)
        assert isinstance(again, ApiError) and "3 per minute" in again.message
    finally:
        await first.close()
        await second.close()


async def test_more_checks_than_one_call_takes_are_sent_in_turn(redis_url: str) -> None:
    windows = RedisWindows.from_url(redis_url)
    script = CountedScript(windows)
    key = f"test-coalescing:{uuid.uuid4().hex}"
    check = WindowCheck.of([(key, 1_500, 60)])
    try:
        verdicts = await asyncio.gather(*(windows.hit(check) for _ in range(1_600)))
        refused = [verdict for verdict in verdicts if verdict is not None]
        assert len(refused) == 100 and {index for index, _oldest in refused} == {0}
        assert script.calls == [1_000, 600]
    finally:
        await windows.close()
