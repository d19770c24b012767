"""Signing in with an API key, and out.

The key is posted once, in a form body, and exchanged for a session: it never sits in a
URL, a cookie or browser storage. Attempts are counted per client address (a wrong key
costs the same as a right one), so keys cannot be guessed through the page.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from controlplane.api.context import CONTROL_PLANE
from controlplane.api.ratelimit import Endpoint, LimitClass, parse_limits
from controlplane.keys import digest
from controlplane.store.models import Scope
from promptline.http.errors import ApiError
from ui.handling import error_page, see_other
from ui.render import RENDERER, UI_SETTINGS
from ui.sessions import end_session, find_session, open_session
from ui.viewer import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    check_form,
    cross_site,
    is_https,
    same_origin,
)

SIGN_IN = Endpoint("POST /ui/sign-in", LimitClass.UI)
HOME = "/ui/prompts"
MAX_KEY_LENGTH = 200


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


async def get_sign_in(request: web.Request) -> web.Response:
    """The sign-in form."""
    return request.app[RENDERER].page(
        "sign_in.html", next=_next(request.query.get("next")), error=None, signed_in=False
    )


async def post_sign_in(request: web.Request) -> web.StreamResponse:
    """Check the key; on success, a session cookie and back to where the viewer was going."""
    if not same_origin(request):
        return error_page(request, cross_site())
    settings = request.app[UI_SETTINGS]
    plane = request.app[CONTROL_PLANE]
    try:
        await plane.limiter.check_anonymous(
            request.remote or "unknown", SIGN_IN, parse_limits(settings.ui_sign_in_limit)
        )
    except ApiError as error:
        return error_page(request, error)
    form = await request.post()
    key = str(form.get("key", "")).strip()
    target = _next(str(form.get("next", "")))
    principal = None
    if key and len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable():
        principal = plane.catalog.current.principal(digest(key))
    if principal is None or Scope.READ.value not in principal.scopes:
        message = (
            "That key is not valid, or it was revoked."
            if principal is None
            else "That key lacks the 'read' scope the dashboard needs."
        )
        return request.app[RENDERER].page(
            "sign_in.html", status=401, next=target, error=message, signed_in=False
        )
    lifetime = timedelta(hours=settings.ui_session_hours)
    opened = await open_session(plane.sessions, digest(key), principal.project_id, lifetime)
    response = see_other(target)
    response.set_cookie(
        COOKIE,
        opened.token,
        path=COOKIE_PATH,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )
    return response


async def post_sign_out(request: web.Request) -> web.StreamResponse:
    """End the session everywhere and forget the cookie (a form of our page only)."""
    form = await request.post()
    token = request.cookies.get(COOKIE)
    sessions = request.app[CONTROL_PLANE].sessions
    row = await find_session(sessions, token) if token else None
    try:
        if row is None:  # nothing to end: only the origin is checked
            if not same_origin(request):
                raise cross_site()
        else:
            check_form(request, str(form.get(CSRF_FIELD, "")), row.csrf_token)
    except ApiError as error:
        return error_page(request, error)
    if token and row is not None:
        await end_session(sessions, token)
    response = see_other("/ui/sign-in")
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response
