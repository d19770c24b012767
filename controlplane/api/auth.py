"""Bearer API-key authentication against the in-memory catalog.

Keys are printable ASCII (``pl_sk_`` plus URL-safe base64), so a token with any other
character cannot be a key: it is refused as invalid (401) before it is hashed. aiohttp
hands header bytes that are not UTF-8 over as surrogates, which cannot be encoded to be
hashed; without this check they would crash the handler (500) on every route.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from controlplane.catalog import Catalog, Principal
from controlplane.keys import digest
from promptline.http.errors import ApiError, ErrorKind


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if there is one."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: web.Request, catalog: Catalog, scope: str) -> Principal:
    """The caller's principal; 401 without a valid key, 403 without ``scope``.

    A header that named a live key in this catalog snapshot is remembered with its
    principal, so the calls after the first skip parsing and hashing (resolve's hot path).
    """
    header = request.headers.get(hdrs.AUTHORIZATION)  # an istr: no case-folding per call
    principal = catalog.callers.get(header) if header is not None else None
    if principal is None:
        principal = _principal(request, catalog)
        if header is not None:
            catalog.remember(header, principal)
    if scope not in principal.scopes:
        raise ApiError(ErrorKind.FORBIDDEN, f"API key lacks the '{scope}' scope for this action.")
    return principal


def _principal(request: web.Request, catalog: Catalog) -> Principal:
    """The principal of the request's Bearer key; 401 without a valid one."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            ErrorKind.UNAUTHORIZED, "API key missing: send 'Authorization: Bearer <key>'."
        )
    principal = catalog.principal(digest(token)) if _could_be_key(token) else None
    if principal is None:
        raise ApiError(ErrorKind.UNAUTHORIZED, "API key invalid or revoked.")
    return principal


def _could_be_key(token: str) -> bool:
    """Whether ``token`` is printable ASCII, as every key is (and only then hashable)."""
    return token.isascii() and token.isprintable()
