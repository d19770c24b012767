"""What the control-plane handlers share, and the check every one of them starts with."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.api.auth import authenticate
from controlplane.api.ratelimit import Endpoint, RateLimiter
from controlplane.catalog import Catalog, CatalogWatcher, Principal
from controlplane.exposures import ExposureSink, NoExposures
from controlplane.transactions import WriteConflict, write
from promptline.http.errors import ApiError, ErrorKind

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class ControlPlane:
    """The catalog view (with its session factory), the rate limiter and the exposure sink."""

    catalog: CatalogWatcher
    limiter: RateLimiter
    exposures: ExposureSink = field(default_factory=NoExposures)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the control-plane store (writes and non-hot-path reads)."""
        return self.catalog.sessions

    async def written(self) -> None:
        """After a commit: reload this process's catalog now, so it reads its own writes.

        Failure only delays the reload to the watcher's next poll, so it is logged, not
        raised: the write itself succeeded.
        """
        try:
            await self.catalog.refresh()
        except Exception:
            log.exception("catalog refresh after a write failed; the watcher will retry")


CONTROL_PLANE = web.AppKey("control_plane", ControlPlane)


class KeptPlane:
    """One app's control plane, read from the app at its first request and kept.

    For resolve, the hot path: ``request.app[CONTROL_PLANE]`` is three Python-level calls
    (``request.app``, ``match_info.current_app``, the app's ``__getitem__``) on every
    request. An app's state cannot change once it has started, so one read is enough.
    """

    __slots__ = ("plane",)

    def __init__(self) -> None:
        self.plane: ControlPlane | None = None

    def of(self, request: web.Request) -> ControlPlane:
        """The plane of ``request``'s app (the app this instance was made for)."""
        plane = self.plane
        if plane is None:
            plane = self.plane = request.app[CONTROL_PLANE]
        return plane


@dataclass(slots=True)
class Caller:
    """An authenticated, rate-checked request's context; read-only by convention.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which
    costs several times a plain one, and every control-plane call builds one.
    """

    plane: ControlPlane
    catalog: Catalog
    principal: Principal


async def admit(request: web.Request, scope: str, endpoint: Endpoint) -> Caller:
    """Authenticate (401/403), then count the call against the key's limit (429).

    Resolve, the hot path, does the same inline (``resolve_route.post_resolve``).
    """
    plane = request.app[CONTROL_PLANE]
    catalog = plane.catalog.current
    principal = authenticate(request, catalog, scope)
    await plane.limiter.check(principal, endpoint)
    return Caller(plane, catalog, principal)


async def commit(plane: ControlPlane, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run a write (retried on races), then make this process's catalog current."""
    try:
        result = await write(plane.sessions, work)
    except WriteConflict as error:
        raise ApiError(
            ErrorKind.CONFLICT,
            "The prompt is being changed by concurrent requests; retry.",
            retry_after=1.0,
        ) from error
    await plane.written()
    return result
