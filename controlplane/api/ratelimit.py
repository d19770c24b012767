"""Per-key, per-endpoint rate limits by plan, with per-organisation overrides.

Seed 001 documents Free and Pro columns for four endpoints. Plans map onto them:

- ``free``: the Free column;
- ``team``: the Pro column (seed 001's "Pro" is our ``team``);
- ``business``: five times the Pro column;
- any other plan string is treated as ``free``.

Endpoints the table does not name take the limits of the row they resemble, each in its own
bucket: other reads (``GET``) those of ``GET /prompts`` (30 / 300 per minute), other writes
those of ``POST /versions`` (20 / 200 per minute), and rollback those of ``POST /deploy``
(5 / 60 per minute). The SDK's routes (``GET /v1/sdk/config`` and ``/stream``) have a row
of their own, ``GET /sdk``, sized for fleets of apps polling: 60 / 6,000 per minute per
key, each route in its own bucket. The dashboard's pages have one too, ``GET /ui``
(300 / 3,000 per minute per key and page), so browsing never eats the API's reads.
``Organization.limit_overrides`` replaces a plan's limit
for an endpoint: ``{"POST /v1/resolve": "2000/second"}``; keys are endpoint names as served
(``:param`` or ``{param}`` placeholders), or the short names (``POST /resolve``, ``GET
/prompts``, ``POST /versions``, ``POST /deploy`` of seed 001's table, and ``GET /sdk`` for
both SDK routes); values are ``limits`` strings such as ``"10/second; 500/hour"`` (every
limit must allow the call). An override that does not parse is ignored,
with a warning, rather than failing requests.

A moving window counts exactly the calls of the last window, so ``Retry-After`` is exact.
Counters live in process memory by default (one process: limits are per process), in
:mod:`controlplane.api.windows` (``limits``' own in-memory store costs more than resolve
does), or in Redis when ``redis_url`` is set (shared by every process), counted by
:mod:`controlplane.api.redis_windows` as ``limits``' moving window counts them, with the
checks of one event-loop tick in one round trip. If Redis fails mid-request the call is
let through (logged): the limiter protects the service, it must not take resolve down
with it.

What a key's calls of an endpoint count against (limits, counter keys) is worked out once
per key and catalog snapshot, not per call: principals are immutable and replaced whole
when the catalog reloads, so a cached entry is valid while it holds the same principal.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from limits import RateLimitItem, parse_many

from controlplane.api.redis_windows import RedisWindows, WindowCheck, WindowsUnavailable
from controlplane.api.windows import MovingWindows, Window
from controlplane.catalog import Principal
from controlplane.store.models import Plan
from promptline.http.errors import ApiError, ErrorKind

log = logging.getLogger(__name__)

BUSINESS_MULTIPLIER = 5
REDIS_KEY_PREFIX = "promptline-ratelimit"
MAX_CACHED_PLANS = 100_000
"""Cached (key, endpoint) limit plans before the cache starts over (revoked keys linger)."""


class LimitClass(StrEnum):
    """Which row of seed 001's table an endpoint's limits come from."""

    RESOLVE = "POST /resolve"
    READ = "GET /prompts"
    WRITE = "POST /versions"
    DEPLOY = "POST /deploy"
    SDK = "GET /sdk"
    """Not in seed 001's table: the SDK's configuration routes, polled by fleets of apps."""
    UI = "GET /ui"
    """Not in seed 001's table: the dashboard's pages, so browsing never eats API reads."""


# (Free, Pro) per row of seed 001's table, as (amount, per-seconds).
_TABLE: dict[LimitClass, tuple[tuple[int, str], tuple[int, str]]] = {
    LimitClass.RESOLVE: ((10, "second"), (500, "second")),
    LimitClass.READ: ((30, "minute"), (300, "minute")),
    LimitClass.WRITE: ((20, "minute"), (200, "minute")),
    LimitClass.DEPLOY: ((5, "minute"), (60, "minute")),
    LimitClass.SDK: ((60, "minute"), (6000, "minute")),
    LimitClass.UI: ((300, "minute"), (3000, "minute")),
}

# The endpoints seed 001's table names, by their short names there.
_SHORT_NAMES = {
    "POST /v1/resolve": LimitClass.RESOLVE.value,
    "GET /v1/prompts": LimitClass.READ.value,
    "POST /v1/prompts/:prompt_id/versions": LimitClass.WRITE.value,
    "POST /v1/prompts/:prompt_id/deploy": LimitClass.DEPLOY.value,
    "GET /v1/sdk/config": LimitClass.SDK.value,
    "GET /v1/sdk/stream": LimitClass.SDK.value,
}

_BRACE_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A rate-limited endpoint: its name (its own bucket) and the row its limits follow."""

    name: str
    limit_class: LimitClass


def plan_limit(plan: str, limit_class: LimitClass) -> str:
    """The limit string for a plan and a row of the table."""
    free, pro = _TABLE[limit_class]
    if plan == Plan.BUSINESS:
        amount, unit = pro[0] * BUSINESS_MULTIPLIER, pro[1]
    elif plan == Plan.TEAM:
        amount, unit = pro
    else:
        amount, unit = free
    return f"{amount}/{unit}"


def normalize_endpoint(name: str) -> str:
    """``GET /a/{x}/`` and ``get /a/:x`` name the same endpoint."""
    method, _, path = name.strip().partition(" ")
    path = _BRACE_PARAM.sub(r":\1", path.strip())
    if len(path) > 1:
        path = path.rstrip("/")
    return f"{method.upper()} {path}"


@lru_cache(maxsize=1024)
def _parse(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))


def parse_limits(limit: str) -> tuple[RateLimitItem, ...]:
    """``"10/minute; 50/hour"`` as limits; raises ValueError for text that is not one."""
    return _parse(limit)


def limits_for(principal: Principal, endpoint: Endpoint) -> tuple[RateLimitItem, ...]:
    """The limits that apply to this key's calls of this endpoint."""
    override = _override(principal, endpoint)
    if override is not None:
        parsed = _parse_override(override, endpoint.name)
        if parsed is not None:
            return parsed
    return _parse(plan_limit(principal.plan, endpoint.limit_class))


@lru_cache(maxsize=1024)
def _parse_override(limit: str, endpoint: str) -> tuple[RateLimitItem, ...] | None:
    """An override's limits, or None (warned about once, not on every call) if unparsable."""
    try:
        return _parse(limit)
    except ValueError:
        log.warning("ignoring the unparsable rate-limit override %r for %s", limit, endpoint)
        return None


def _override(principal: Principal, endpoint: Endpoint) -> str | None:
    if not principal.limit_overrides:
        return None
    wanted = normalize_endpoint(endpoint.name)
    short = _SHORT_NAMES.get(wanted)
    for key, value in principal.limit_overrides.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        normalized = normalize_endpoint(key)
        if normalized == wanted or (short is not None and normalized == short):
            return value
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one key's calls of one endpoint count against, for one catalog snapshot."""

    principal: Principal
    items: tuple[RateLimitItem, ...]
    remote: WindowCheck | None
    """The Redis windows it counts against (None with in-memory counters)."""
    counters: tuple[tuple[Window, int, RateLimitItem], ...]
    """The in-memory counter, its amount and its limit, per item (empty with Redis)."""
    generation: int
    """``MovingWindows.generation`` when the counters were fetched."""


def _remote(items: tuple[RateLimitItem, ...], identity: tuple[str, str]) -> WindowCheck:
    """The Redis windows of ``items`` under ``identity``, keyed as ``limits`` keys them."""
    return WindowCheck.of(
        [
            (f"{REDIS_KEY_PREFIX}:{item.key_for(*identity)}", item.amount, item.get_expiry())
            for item in items
        ]
    )


def _plan(principal: Principal, endpoint: Endpoint, windows: MovingWindows | None) -> _Plan:
    items = limits_for(principal, endpoint)
    identity = (principal.key_id.hex, normalize_endpoint(endpoint.name))
    counters = (
        tuple(
            (
                windows.window((*identity, item.amount, item.get_expiry()), item.get_expiry()),
                item.amount,
                item,
            )
            for item in items
        )
        if windows is not None
        else ()
    )
    remote = None if windows is not None else _remote(items, identity)
    return _Plan(principal, items, remote, counters, windows.generation if windows else 0)


class RateLimiter:
    """Counts calls per (API key, endpoint) and refuses those over the limit with a 429."""

    def __init__(self, remote: RedisWindows | None = None) -> None:
        """In-memory counters without ``remote``; else moving windows in its Redis."""
        self._remote = remote
        self._windows = MovingWindows()
        self._plans: dict[tuple[int, str], _Plan] = {}

    @classmethod
    async def open(cls, redis_url: str = "") -> RateLimiter:
        """In-memory counters, or Redis ones when ``redis_url`` is set (connects lazily).

        The Redis client's first import reads many files, so it happens in a thread.
        """
        if not redis_url:
            return cls()
        await asyncio.to_thread(importlib.import_module, "coredis")
        return cls(RedisWindows.from_url(redis_url))

    async def check(self, principal: Principal, endpoint: Endpoint) -> None:
        """Count this call; raise ApiError(RATE_LIMITED) with Retry-After when over a limit."""
        remote = self._remote
        if remote is None:
            self.count(principal, endpoint)
            return
        plan = self._plan_of(principal, endpoint)
        assert plan.remote is not None
        await _counted(remote, plan.remote, plan.items, endpoint)

    async def check_anonymous(
        self, who: str, endpoint: Endpoint, items: tuple[RateLimitItem, ...]
    ) -> None:
        """Count a call made without a key (a sign-in attempt) under ``who``, such as the
        client's address; raise ApiError(RATE_LIMITED) with Retry-After when over a limit."""
        identity = ("anonymous:" + who, normalize_endpoint(endpoint.name))
        remote = self._remote
        if remote is not None:
            await _counted(remote, _remote(items, identity), items, endpoint)
            return
        for item in items:
            key = (*identity, item.amount, item.get_expiry())
            retry_after = self._windows.hit(key, item.amount, item.get_expiry())
            if retry_after is not None:
                raise _limited(item, endpoint, retry_after)

    def count(self, principal: Principal, endpoint: Endpoint) -> bool:
        """:meth:`check` without a coroutine (resolve's hot path) when the counters are in
        this process: True once counted (or raises the 429). False, with nothing counted,
        when they are in Redis: then ``await check()``."""
        if self._remote is not None:
            return False
        windows = self._windows
        now = windows.tick()
        plan = self._plans.get((principal.key_id.int, endpoint.name))  # _plan_of's hit, inline
        if plan is None or plan.principal is not principal or plan.generation != windows.generation:
            plan = self._plan_of(principal, endpoint)
        for window, amount, item in plan.counters:
            retry_after = window.hit(now, amount)
            if retry_after is not None:
                raise _limited(item, endpoint, retry_after)
        return True

    def _plan_of(self, principal: Principal, endpoint: Endpoint) -> _Plan:
        cache_key = (principal.key_id.int, endpoint.name)  # an int hashes in C, a UUID not
        plan = self._plans.get(cache_key)
        windows = self._windows if self._remote is None else None
        if (
            plan is None
            or plan.principal is not principal
            or (windows is not None and plan.generation != windows.generation)
        ):
            if len(self._plans) >= MAX_CACHED_PLANS:
                self._plans.clear()
            plan = self._plans[cache_key] = _plan(principal, endpoint, windows)
        return plan

    async def close(self) -> None:
        """Forget the in-memory counters, or drop the Redis connections."""
        self._windows.clear()
        self._plans.clear()
        if self._remote is not None:
            await self._remote.close()


async def _counted(
    remote: RedisWindows, check: WindowCheck, items: tuple[RateLimitItem, ...], endpoint: Endpoint
) -> None:
    """Count ``check`` in Redis; the 429 of the first window that refuses it."""
    try:
        refusal = await remote.hit(check)
    except WindowsUnavailable as error:
        log.warning("rate-limit storage failed, letting the call through: %s", error)
        return
    if refusal is not None:
        index, oldest = refusal
        item = items[index]
        raise _limited(item, endpoint, max(0.0, oldest + item.get_expiry() - time.time()))


def _limited(item: RateLimitItem, endpoint: Endpoint, retry_after: float) -> ApiError:
    return ApiError(
        ErrorKind.RATE_LIMITED,
        f"Rate limit of {item.amount} per {_window(item)} exceeded for "
        f"{endpoint.name}; retry after the Retry-After header's seconds.",
        retry_after=retry_after,
    )


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
