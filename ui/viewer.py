"""Who is looking: the session cookie, the key behind it, and the checks an action needs.

A page reads the cookie, finds the session in the store and the key's principal in the
in-memory catalog (a revoked key has none: its sessions end with it), then counts the
page against the key's dashboard limit (``LimitClass.UI``), never its API reads. An action
(a form posted) also needs the key's ``deploy`` scope, a request from the page's own
origin, and the session's CSRF token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from controlplane.api.context import CONTROL_PLANE, ControlPlane
from controlplane.api.ratelimit import Endpoint
from controlplane.catalog import Catalog, Principal
from controlplane.store.models import Scope
from promptline.http.errors import ApiError, ErrorKind
from ui.sessions import find_session

COOKIE = "promptline_ui"
COOKIE_PATH = "/ui/"
CSRF_FIELD = "csrf_token"


class SignInNeeded(Exception):
    """No live session: the page sends the browser to the sign-in page."""


@dataclass(slots=True)
class Viewer:
    """A signed-in request: the key's principal and the session's CSRF token."""

    plane: ControlPlane
    catalog: Catalog
    principal: Principal
    csrf_token: str

    @property
    def can_deploy(self) -> bool:
        """Whether the key may deploy, roll back and stop rollouts."""
        return Scope.DEPLOY.value in self.principal.scopes


async def viewer(request: web.Request, endpoint: Endpoint) -> Viewer:
    """The signed-in viewer of a page, counted against its dashboard limit."""
    plane = request.app[CONTROL_PLANE]
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInNeeded
    row = await find_session(plane.sessions, token)
    if row is None:
        raise SignInNeeded
    catalog = plane.catalog.current
    principal = catalog.principal(row.key_sha256)
    if principal is None or principal.project_id != row.project_id:
        raise SignInNeeded  # the key was revoked since
    await plane.limiter.check(principal, endpoint)
    return Viewer(plane, catalog, principal, row.csrf_token)


def cross_site() -> ApiError:
    """The refusal of a form posted from another site (403)."""
    return ApiError(ErrorKind.FORBIDDEN, "Refused: the form was posted from another site.")


def check_form(request: web.Request, sent: str, csrf_token: str) -> None:
    """Refuse (403) a posted form that is not from our own page of the session whose CSRF
    token is ``csrf_token``; ``sent`` is the token the form carried."""
    if not same_origin(request):
        raise cross_site()
    if not sent.isascii() or not hmac.compare_digest(sent, csrf_token):
        raise ApiError(
            ErrorKind.FORBIDDEN,
            "Refused: the form's security token is missing or stale; "
            "reload the page and try again.",
        )


def check_action(request: web.Request, viewer: Viewer, form: dict[str, str]) -> None:
    """Refuse a posted form (403) that is not from our own page of this session, or whose
    key lacks the deploy scope."""
    check_form(request, form.get(CSRF_FIELD, ""), viewer.csrf_token)
    if not viewer.can_deploy:
        raise ApiError(
            ErrorKind.FORBIDDEN, "This API key lacks the 'deploy' scope needed for this action."
        )


def same_origin(request: web.Request) -> bool:
    """Whether a form post comes from a page of this service.

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` with every form post; either naming
    another site refuses it. A proxy may change the scheme, so hosts are compared.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == request.host.lower()


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS, directly or through a proxy that says so.

    Trusting ``X-Forwarded-Proto`` here is safe: it only makes the cookie stricter.
    """
    if request.secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"
