"""CORS for the edge's routes, so browsers can send events (seed 000's example is a fetch).

A browser ``fetch`` with an ``Authorization`` header is not a "simple" request: the
browser first sends an ``OPTIONS`` preflight, without the key, and only sends the event
if the answer allows the origin, the method and the headers. Then it hands the answer to
the page only if that answer allows the origin too, and exposes ``Retry-After`` only if
told to. So the edge answers preflights on its routes and adds the headers to every
answer of those routes, errors included (a 401, 429 or 503 the page cannot read is no
help).

Allowed origins come from ``edge_cors_origins``: ``*`` (the default) allows any page,
which is safe here because the edge authenticates by a key the page must hold, never by
cookies, so a foreign page gains nothing it did not already have; a comma-separated
list of origins allows only those (the answer then names the origin and says
``Vary: Origin``); empty turns CORS off. Only the edge's routes are covered: the
control plane is for servers and the dashboard, not third-party pages.

Written here rather than with aiohttp-cors (maintained, but a dependency and a
registration per route) because the edge needs one fixed policy on four routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import hdrs, web

from ingest.observe import ANSWER_HOOKS
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation, Param
from promptline.http.routes import served_routes

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, Idempotency-Key"
"""What a page may send. Listed, since ``*`` would not cover ``Authorization``."""
EXPOSED_HEADERS = "Retry-After"
"""Not a CORS-safelisted response header, and what a page needs to back off."""
MAX_AGE_SECONDS = "7200"
"""How long a browser may reuse a preflight (Chromium caps it at two hours)."""


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may call the edge from a browser."""

    any_origin: bool
    origins: frozenset[str]

    @classmethod
    def parse(cls, setting: str) -> CorsPolicy:
        """``*``, a comma-separated list of origins, or empty (off)."""
        entries = {entry.strip() for entry in setting.split(",") if entry.strip()}
        if "*" in entries:
            return cls(any_origin=True, origins=frozenset())
        return cls(any_origin=False, origins=frozenset(entries))

    @property
    def enabled(self) -> bool:
        """Whether any origin at all is allowed."""
        return self.any_origin or bool(self.origins)

    def allow_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None if refused."""
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None


CORS_POLICY = web.AppKey("edge_cors_policy", CorsPolicy)


async def preflight(request: web.Request) -> web.Response:
    """``OPTIONS`` on an edge route: 204 allowing the origin, or 403 if it is not allowed."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:  # not a browser's preflight: just say what the route takes
        return web.Response(status=204, headers={hdrs.ALLOW: ALLOWED_METHODS})
    allowed = request.app[CORS_POLICY].allow_origin(origin)
    if allowed is None:
        raise ApiError(ErrorKind.FORBIDDEN, f"Origin {origin} may not call this API.")
    headers = {
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: allowed,
        hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
        hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
        hdrs.ACCESS_CONTROL_MAX_AGE: MAX_AGE_SECONDS,
    }
    if allowed != "*":
        headers[hdrs.VARY] = "Origin"
    return web.Response(status=204, headers=headers)


PREFLIGHT = Operation(
    summary="CORS preflight",
    description="What a browser asks before sending an event from a page: 204 with the "
    "Access-Control-Allow-* headers when the origin is allowed (PROMPTLINE_EDGE_CORS_ORIGINS), "
    "403 when not; without an Origin, 204 with Allow.",
    tag="edge (seeds 000, 004)",
    scope=None,
    answers={204: Answer("Allowed.", headers={"Access-Control-Allow-Origin": "The origin."})},
    errors=(ErrorKind.FORBIDDEN,),
    parameters=(Param("Origin", "The page's origin.", location="header"),),
)


def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Answer hook of the edge's routes: allow the origin on their answers, errors included."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or request.method == hdrs.METH_OPTIONS:
        return
    allowed = request.app[CORS_POLICY].allow_origin(origin)
    if allowed is None:
        return  # the browser withholds the answer from the page
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS
    if allowed != "*":
        response.headers.add(hdrs.VARY, "Origin")


def add_cors(app: web.Application, policy: CorsPolicy, paths: Iterable[str]) -> None:
    """Answer preflights on ``paths`` and allow origins on their answers, per ``policy``."""
    if not policy.enabled:
        return
    routes = frozenset(paths)
    app[CORS_POLICY] = policy
    for path in sorted(routes):
        served_routes(app).add_route(hdrs.METH_OPTIONS, path, preflight, PREFLIGHT)
    app[ANSWER_HOOKS].add(add_cors_headers, routes)  # the app is a serving_app
