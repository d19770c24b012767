"""The service's one middleware: error envelopes, request counts and, if asked, access logs.

Every request pays for each middleware layer (aiohttp adds one of its own beside them), so
rendering errors and counting requests share one: it sees the ``ApiError`` or aiohttp
HTTP error a handler raised, counts its canonical code, and renders the envelope
(``promptline.http.errors.answer_error``).
Routes are labelled by their pattern (``/api/v1/prompts/{prompt_id}/signals``), never
by the concrete path, so label cardinality stays bounded; unmatched paths share one.
The access log is one structured line per request, off unless the setting turns it on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from ingest.metrics import EdgeMetrics
from promptline.http.errors import (
    STATUS,
    ApiError,
    DialectResolver,
    Handler,
    answer_error,
)

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


AnswerHook = Callable[[web.Request, web.StreamResponse], None]
"""Called with every answer the middleware returns, errors included (e.g. CORS headers)."""
ANSWER_HOOKS = web.AppKey("answer_hooks", list[AnswerHook])
"""The hook list the app's serving middleware calls; routes append to it as they register."""


def serving_middleware(
    resolve_dialect: DialectResolver,
    metrics: EdgeMetrics,
    access_log: bool = False,
    answer_hooks: Sequence[AnswerHook] = (),
) -> Middleware:
    """Render errors as envelopes, count requests by route and status, errors by code.

    ``answer_hooks`` (a list that may still grow) see each answer before it is returned:
    plain calls, cheaper than aiohttp's ``on_response_prepare`` signal, which costs a
    coroutine per receiver on every response, resolve's included.
    """

    count_request = metrics.tally.request  # bound once: the success path calls it directly

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            _record(request, CLIENT_CLOSED, "cancelled", started)
            raise
        except Exception as error:
            response = answer_error(request, error, resolve_dialect)
            code = error.kind.value if isinstance(error, ApiError) else _code_of(response.status)
            _record(request, response.status, code, started)
        else:
            status = response.status
            if status < 400 and not access_log:  # the hot path: one call to count it
                count_request(
                    route_label(request), request.method, status, time.perf_counter() - started
                )
            else:
                _record(request, status, _code_of(status), started)
        for hook in answer_hooks:
            hook(request, response)
        return response

    def _record(request: web.Request, status: int, code: str, started: float) -> None:
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


def serving_app(
    resolve_dialect: DialectResolver, metrics: EdgeMetrics, access_log: bool = False
) -> web.Application:
    """An application answered through :func:`serving_middleware`, its hooks under
    ``ANSWER_HOOKS`` for routes to add to (CORS)."""
    hooks: list[AnswerHook] = []
    app = web.Application(
        middlewares=[serving_middleware(resolve_dialect, metrics, access_log, hooks)]
    )
    app[ANSWER_HOOKS] = hooks
    return app
