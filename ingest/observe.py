"""A cheap middleware that counts every request and, if asked, logs it.

It sits *inside* the error middleware, so it sees the ``ApiError`` or aiohttp HTTP error
a handler raised (and thus the canonical error code) before the envelope is rendered.
Routes are labelled by their pattern (``/api/v1/prompts/{prompt_id}/signals``), never
by the concrete path, so label cardinality stays bounded; unmatched paths share one.
The access log is one structured line per request, off unless the setting turns it on.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ingest.metrics import EdgeMetrics
from promptline.http.errors import STATUS, ApiError, ErrorKind, Handler

log = logging.getLogger("promptline.access")

UNMATCHED = "unmatched"
CLIENT_CLOSED = 499
"""Status recorded when a handler is cancelled (client gone, or shutdown ran out of time)."""
_KIND_OF_STATUS = {status: kind for kind, status in reversed(STATUS.items())}


def _code_of(status: int) -> str:
    """The canonical code of an error status (empty below 400)."""
    if status < 400:
        return ""
    kind = _KIND_OF_STATUS.get(status)
    return kind.value if kind is not None else str(status)


def route_label(request: web.Request) -> str:
    """The pattern of the route that serves ``request``."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None:
        return UNMATCHED
    return resource.canonical


def observe_middleware(metrics: EdgeMetrics, access_log: bool = False) -> web.middleware:  # type: ignore[valid-type]
    """Count requests by route and status, errors by code, and time them."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status, code = 500, ErrorKind.INTERNAL.value
        try:
            response = await handler(request)
            status, code = response.status, _code_of(response.status)
            return response
        except ApiError as error:
            status, code = error.status, error.kind.value
            raise
        except web.HTTPException as error:
            status, code = error.status, _code_of(error.status)
            raise
        except asyncio.CancelledError:
            status, code = CLIENT_CLOSED, "cancelled"
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(request)
            metrics.observe_request(route, request.method, status, elapsed)
            if code:
                metrics.observe_error(route, code)
            if access_log:
                log.info(
                    "%s %s %d",
                    request.method,
                    request.path,
                    status,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "route": route,
                        "status": status,
                        "code": code or None,
                        "duration_ms": round(elapsed * 1000, 3),
                        "remote": request.remote,
                    },
                )

    return middleware
