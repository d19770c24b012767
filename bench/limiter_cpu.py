"""CPU of one rate-limit check with counters in Redis: one call per check against coalesced.

Run by ``bench.serve_processes`` against its Redis, in the same process for both ways,
alternating round by round: ``limits``' moving-window strategy, one script call per check
(how the limiter counted before), and ``RateLimiter``, whose checks of one event-loop tick
share one script call. ``concurrency`` tasks check at once, as a serving process's
connections do; the figure is this process's CPU time per check.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from controlplane.api.ratelimit import (
    REDIS_KEY_PREFIX,
    Endpoint,
    LimitClass,
    RateLimiter,
    parse_limits,
)
from controlplane.catalog import Principal

ENDPOINT = Endpoint("POST /api/v1/prompts/analytics", LimitClass.RESOLVE)
LIMIT = "1000000/second"
WAYS = ("one call per check", "coalesced")


async def _cpu_per_check(check: Callable[[], Awaitable[object]], checks: int, tasks: int) -> float:
    """Microseconds of this process's CPU per check, ``tasks`` checking at once."""
    left = checks

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await check()

    began = time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return (time.process_time() - began) / checks * 1e6


async def limiter_cpu(
    redis_url: str, rounds: int, checks: int = 20_000, tasks: int = 256
) -> dict[str, list[float]]:
    """CPU µs per check, per way, one figure per round."""
    principal = Principal(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "business", frozenset(), {ENDPOINT.name: LIMIT}
    )
    [item] = parse_limits(LIMIT)
    storage = RedisStorage(f"async+{redis_url}", wrap_exceptions=True, key_prefix=REDIS_KEY_PREFIX)
    strategy = MovingWindowRateLimiter(storage)
    identity = (f"bench-{uuid.uuid4().hex}", ENDPOINT.name)
    limiter = await RateLimiter.open(redis_url)
    ways: dict[str, Callable[[], Awaitable[object]]] = {
        WAYS[0]: lambda: strategy.hit(item, *identity),
        WAYS[1]: lambda: limiter.check(principal, ENDPOINT),
    }
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        for way in WAYS:  # warm: connections, scripts loaded
            await _cpu_per_check(ways[way], 1_000, tasks)
        for round_number in range(rounds):
            for way in WAYS if round_number % 2 == 0 else WAYS[::-1]:
                results[way].append(await _cpu_per_check(ways[way], checks, tasks))
    finally:
        await limiter.close()
    return results
