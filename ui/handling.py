"""How a dashboard handler is served: the viewer found, errors answered as pages.

Every answer says how long the service took to make it (``Server-Timing: page;dur=``,
in milliseconds), which the browser's developer tools and the benchmark read. A page
without a live session sends the browser to sign in (303, remembering where it was
going); a form posted without one is refused (403). Any ``ApiError`` becomes an error
page with the same status (and ``Retry-After``), so a person reads what went wrong; the
API's JSON envelopes stay with the API's routes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import hdrs, web
from markupsafe import escape

from controlplane.api.ratelimit import Endpoint, LimitClass
from promptline.http.errors import ApiError, ErrorKind
from ui.render import RENDERER, UI_SETTINGS
from ui.viewer import SignInNeeded, Viewer, viewer

PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SIGN_IN_PATH = "/ui/sign-in"


def error_page(request: web.Request, error: ApiError) -> web.Response:
    """An ``ApiError`` as a page a person can read."""
    response = request.app[RENDERER].page(
        "error.html",
        status=error.status,
        title="Something went wrong" if error.status >= 500 else "That did not work",
        message=error.message,
        code=error.kind.value,
        signed_in=False,
    )
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return response


def public_url(request: web.Request) -> str:
    """Where users reach the service, for the commands a page shows."""
    configured = request.app[UI_SETTINGS].public_url
    return configured.rstrip("/") if configured else str(request.url.origin())


def see_other(location: str) -> web.Response:
    """303 to ``location``: after a form, the browser GETs the page it names."""
    link = escape(location)
    return web.Response(
        status=303,
        text=f'<!doctype html><title>See other</title><a href="{link}">{link}</a>',
        content_type="text/html",
        headers={hdrs.LOCATION: location, "Cache-Control": "no-store"},
    )


def sign_in_redirect(request: web.Request) -> web.StreamResponse:
    """303 to the sign-in page, which comes back here after."""
    if request.method != hdrs.METH_GET:
        return error_page(
            request,
            ApiError(ErrorKind.FORBIDDEN, "Refused: sign in first, then try again from the page."),
        )
    target = request.rel_url.path_qs
    return see_other(f"{SIGN_IN_PATH}?next={quote(target, safe='')}")


def page(route: str) -> Callable[[PageHandler], Handler]:
    """Serve ``handler`` for signed-in viewers, its reads counted in its own bucket of the
    dashboard's limit class."""
    endpoint = Endpoint(route, LimitClass.UI)

    def wrap(handler: PageHandler) -> Handler:
        async def served(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                response = await handler(request, await viewer(request, endpoint))
            except SignInNeeded:
                response = sign_in_redirect(request)
            except ApiError as error:
                response = error_page(request, error)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"page;dur={elapsed_ms:.1f}"
            return response

        served.__doc__ = handler.__doc__
        return served

    return wrap
