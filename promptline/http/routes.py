"""Registering routes whose handlers the app wraps itself, instead of through a middleware.

aiohttp runs an app's middlewares through a chain it looks up per request (an
``lru_cache`` keyed by the handler and the app, a ``partial`` per layer, and a layer of
its own that sets ``current_app``). Measured on resolve, that machinery alone cost more
than a passthrough handler: about 18,000 instructions a request, a tenth of a whole bare
aiohttp request. So a serving app has no middleware: each handler is wrapped once, when
its route is added, by the app's :class:`HandlerWrapper` (``ingest.observe.Serving``:
envelopes, request counts, answer hooks), which also learns the route's label then
instead of looking it up per request. An app without a wrapper (a test app with its own
middleware) gets the handlers as they are. Each route may carry its
:class:`~promptline.http.operations.Operation`, recorded for the API document only.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import AbstractRoute, Resource

from promptline.http.errors import Handler
from promptline.http.operations import Operation, record


class HandlerWrapper(Protocol):
    """What a serving app puts around each handler as its route is added."""

    def wrap(self, handler: Handler, route: str) -> Handler:
        """``handler`` as served on the route labelled ``route`` (its pattern)."""
        ...


HANDLER_WRAPPER = web.AppKey("handler_wrapper", HandlerWrapper)


class ServedRoutes:
    """``app.router``'s ``add_get``/``add_post``/``add_route``, wrapping each handler."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._router = app.router
        self._wrapper = app.get(HANDLER_WRAPPER)

    def add_route(
        self, method: str, path: str, handler: Handler, operation: Operation | None = None
    ) -> AbstractRoute:
        """A route for ``method`` on ``path``, documented by ``operation``."""
        resource = self._router.add_resource(path)
        self._document(method, resource, operation)
        return resource.add_route(method, self._wrapped(handler, resource))

    def add_get(
        self, path: str, handler: Handler, operation: Operation | None = None
    ) -> AbstractRoute:
        """GET and HEAD on ``path``, as aiohttp's ``add_get`` registers them."""
        resource = self._router.add_resource(path)
        self._document(hdrs.METH_GET, resource, operation)
        wrapped = self._wrapped(handler, resource)
        resource.add_route(hdrs.METH_HEAD, wrapped)
        return resource.add_route(hdrs.METH_GET, wrapped)

    def add_post(
        self, path: str, handler: Handler, operation: Operation | None = None
    ) -> AbstractRoute:
        """POST on ``path``."""
        return self.add_route(hdrs.METH_POST, path, handler, operation)

    def _document(self, method: str, resource: Resource, operation: Operation | None) -> None:
        """Record the route's contract for the API document (a test requires one)."""
        if operation is not None:
            record(self._app, method, resource.canonical, operation)

    def _wrapped(self, handler: Handler, resource: Resource) -> Handler:
        if self._wrapper is None:
            return handler
        return self._wrapper.wrap(handler, resource.canonical)


def served_routes(app: web.Application) -> ServedRoutes:
    """Where a module adds its routes to ``app`` (see the module docstring)."""
    return ServedRoutes(app)
