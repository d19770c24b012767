"""The check every edge route starts with: who is calling, and may they call now."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from controlplane.api.auth import authenticate
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.catalog import Catalog, Principal
from controlplane.store.models import Scope

# The edge's routes are hot paths like resolve, so they follow resolve's row of seed
# 001's table (10/s free, 500/s team, 2,500/s business), each route in its own bucket
# and overridable per organisation under its name, e.g.
# {"POST /api/v1/events/batch": "5000/second"}. A batch counts as one request.
SIGNALS = Endpoint("POST /api/v1/prompts/:prompt_id/signals", LimitClass.RESOLVE)
USAGE = Endpoint("POST /dashboard/prompts/usage", LimitClass.RESOLVE)
ANALYTICS = Endpoint("POST /api/v1/prompts/analytics", LimitClass.RESOLVE)
BATCH = Endpoint("POST /api/v1/events/batch", LimitClass.RESOLVE)


class RequestLimiter(Protocol):
    """Per-key request rate limits (``controlplane.api.ratelimit.RateLimiter``)."""

    async def check(self, principal: Principal, endpoint: Endpoint) -> None:
        """Count the call; raise ApiError(RATE_LIMITED) with Retry-After when over."""
        ...

    def count(self, principal: Principal, endpoint: Endpoint) -> bool:
        """``check`` without a coroutine when the counters are in this process (True once
        counted); False, with nothing counted, when ``check`` must be awaited."""
        ...


class NoRequestLimits:
    """A limiter that lets everything through (tests that are not about limits)."""

    async def check(self, principal: Principal, endpoint: Endpoint) -> None:
        """Allow."""

    def count(self, principal: Principal, endpoint: Endpoint) -> bool:
        """Allow."""
        return True


async def admit(
    request: web.Request, catalog: Catalog, limiter: RequestLimiter, endpoint: Endpoint
) -> Principal:
    """Authenticate with scope ``ingest`` (401/403), then count the request (429)."""
    principal, counted = admit_now(request, catalog, limiter, endpoint)
    if not counted:
        await limiter.check(principal, endpoint)
    return principal


def admit_now(
    request: web.Request, catalog: Catalog, limiter: RequestLimiter, endpoint: Endpoint
) -> tuple[Principal, bool]:
    """:func:`admit` without a coroutine: the principal, and whether the request is counted
    already (in-process counters); if not, the caller awaits ``limiter.check``."""
    principal = authenticate(request, catalog, Scope.INGEST)
    return principal, limiter.count(principal, endpoint)
