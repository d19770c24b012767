"""How the service serves each handler: error envelopes, request counts, access logs.

Each handler is wrapped once, as its route is added (``promptline.http.routes``), rather
than run through an aiohttp middleware, whose per-request machinery cost more than
resolve's own checks. The wrapper sees the ``ApiError`` or aiohttp HTTP error a handler
raised, counts its canonical code, and renders the envelope
(``promptline.http.errors.answer_error``). A catch-all route, which aiohttp's router
tries after every other, answers unmatched paths (404) and unserved methods (405, with
``Allow``) the same way.
Routes are labelled by their pattern (``/api/v1/prompts/{prompt_id}/signals``), never
by the concrete path, so label cardinality stays bounded; unmatched paths share one.
The access log is one structured line per request, off unless the setting turns it on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from ingest.metrics import EdgeMetrics
from promptline.http.errors import (
    STATUS,
    ApiError,
    DialectResolver,
    Handler,
    answer_error,
)
from promptline.http.routes import HANDLER_WRAPPER

log = logging.getLogger("promptline.access")

UNMATCHED = "unmatched"
CATCH_ALL = "/{unmatched_path:.*}"
"""Indexed under ``/``, so aiohttp's router tries it after every other route."""
CLIENT_CLOSED = 499
"""Status recorded when a handler is cancelled (client gone, or shutdown ran out of time)."""
_KIND_OF_STATUS = {status: kind for kind, status in reversed(STATUS.items())}


def _code_of(status: int) -> str:
    """The canonical code of an error status (empty below 400)."""
    if status < 400:
        return ""
    kind = _KIND_OF_STATUS.get(status)
    return kind.value if kind is not None else str(status)


AnswerHook = Callable[[web.Request, web.StreamResponse], None]
"""Called with every answer of its routes' handlers, errors included (e.g. CORS headers)."""


class AnswerHooks:
    """Answer hooks by route, so that a route calls only its own (resolve calls none).

    A route's list is handed to its wrapper when the route is added and may still grow:
    a hook added later for the route is seen by the wrapper made earlier, and a route
    added later finds the hooks already added for it.
    """

    def __init__(self) -> None:
        self._by_route: dict[str, list[AnswerHook]] = {}

    def add(self, hook: AnswerHook, routes: Iterable[str]) -> None:
        """Call ``hook`` on every answer of ``routes`` (route labels: their patterns)."""
        for route in routes:
            self.of(route).append(hook)

    def of(self, route: str) -> list[AnswerHook]:
        """The hooks of ``route``, as a list that later ``add`` calls extend."""
        hooks = self._by_route.get(route)
        if hooks is None:
            hooks = self._by_route[route] = []
        return hooks


ANSWER_HOOKS = web.AppKey("answer_hooks", AnswerHooks)
"""The app's answer hooks, which its served handlers call; routes add to them."""


class Serving:
    """Wraps handlers to render errors as envelopes and count requests and errors.

    ``answer_hooks`` see each answer of their routes before it is returned: plain calls,
    cheaper than aiohttp's ``on_response_prepare`` signal, which costs a coroutine per
    receiver on every response, resolve's included.
    """

    def __init__(
        self,
        resolve_dialect: DialectResolver,
        metrics: EdgeMetrics,
        access_log: bool = False,
        answer_hooks: AnswerHooks | None = None,
    ) -> None:
        self._resolve_dialect = resolve_dialect
        self._metrics = metrics
        self._access_log = access_log
        self._answer_hooks = answer_hooks if answer_hooks is not None else AnswerHooks()

    def wrap(self, handler: Handler, route: str) -> Handler:
        """``handler`` served on the route labelled ``route``."""
        count_request = self._metrics.tally.request  # bound once: the success path's call
        resolve_dialect, hooks, access_log = (
            self._resolve_dialect,
            self._answer_hooks.of(route),
            self._access_log,
        )
        record = self._record

        async def served(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except asyncio.CancelledError:
                record(request, route, CLIENT_CLOSED, "cancelled", started)
                raise
            except Exception as error:
                response = answer_error(request, error, resolve_dialect)
                status = response.status
                code = error.kind.value if isinstance(error, ApiError) else _code_of(status)
                record(request, route, status, code, started)
            else:
                status = response.status
                if status < 400 and not access_log:  # the hot path: one call to count it
                    count_request(route, request.method, status, time.perf_counter() - started)
                else:
                    record(request, route, status, _code_of(status), started)
            for hook in hooks:
                hook(request, response)
            return response

        return served

    def _record(
        self, request: web.Request, route: str, status: int, code: str, started: float
    ) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.observe_request(route, request.method, status, elapsed)
        if code:
            self._metrics.observe_error(route, code)
        if self._access_log:
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


async def unmatched(request: web.Request) -> web.StreamResponse:
    """No route takes this path (404), or none takes this method on it (405 with Allow).

    The router returned the catch-all because nothing else matched, so the methods the
    other routes of this path take are asked for again here; only unmatched requests pay.
    """
    catch_all = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not catch_all:
            _match, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def serving_app(
    resolve_dialect: DialectResolver, metrics: EdgeMetrics, access_log: bool = False
) -> web.Application:
    """An application whose routes (added through ``served_routes``) are served by
    :class:`Serving`, its hooks under ``ANSWER_HOOKS`` for routes to add to (CORS)."""
    hooks = AnswerHooks()
    serving = Serving(resolve_dialect, metrics, access_log, hooks)
    app = web.Application()
    app[ANSWER_HOOKS] = hooks
    app[HANDLER_WRAPPER] = serving
    app.router.add_route("*", CATCH_ALL, serving.wrap(unmatched, UNMATCHED))
    return app
