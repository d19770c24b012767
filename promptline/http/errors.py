"""One error type for every route, rendered in each route family's documented shape.

The seeds disagree on error codes (``validation_error`` vs ``VALIDATION_ERROR`` vs
``invalid_request``), so a handler raises an :class:`ApiError` of a canonical
:class:`ErrorKind`, and the serving wrapper renders it with the code of the family that
serves the path (see ARCHITECTURE.md, "Route families").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

DOCS_URL = "https://promptline.dev/docs/errors"


class ErrorKind(StrEnum):
    """What went wrong, independent of how a route family spells it."""

    INVALID_REQUEST = "invalid_request"
    VALIDATION = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    WEIGHT_MISMATCH = "weight_mismatch"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal_error"


STATUS = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.VALIDATION: 422,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorKind.WEIGHT_MISMATCH: 422,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}


class ApiError(Exception):
    """Raised by handlers; becomes an error envelope with the right status and code."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        retry_after: float | None = None,
        close_connection: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else STATUS[kind]
        self.field = field
        self.retry_after = retry_after
        self.close_connection = close_connection
        """Answer with ``Connection: close`` (the connection cannot carry another request)."""
        self.headers = headers
        """Headers the answer carries besides the envelope's (a 415's ``Accept-Encoding``)."""


class ErrorDialect:
    """How one route family spells its error codes."""

    def __init__(self, name: str, overrides: dict[ErrorKind, str] | None = None) -> None:
        self.name = name
        self._overrides = overrides or {}

    def code(self, kind: ErrorKind) -> str:
        """The code string this family documents for ``kind``."""
        return self._overrides.get(kind, kind.value)


DEFAULT_DIALECT = ErrorDialect("default")


def error_response(error: ApiError, dialect: ErrorDialect) -> web.Response:
    """The JSON error envelope for ``error``."""
    code = dialect.code(error.kind)
    body: dict[str, str] = {"code": code, "message": error.message, "docs": f"{DOCS_URL}#{code}"}
    if error.field is not None:
        body["field"] = error.field
    headers: dict[str, str] = dict(error.headers) if error.headers is not None else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    response = web.Response(
        status=error.status,
        body=orjson.dumps({"error": body}),
        content_type="application/json",
        headers=headers,
    )
    if error.close_connection:
        response.force_close()
    return response


DialectResolver = Callable[[web.Request], ErrorDialect]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer_error(
    request: web.Request, error: Exception, resolve_dialect: DialectResolver
) -> web.Response:
    """The envelope for what a handler raised: an ApiError, an aiohttp HTTP error, a crash.

    Re-raises an aiohttp HTTP exception below 400 (a redirect is an answer, not an error).
    A crash is logged with its trace and answered without it.
    """
    if isinstance(error, ApiError):
        return error_response(error, resolve_dialect(request))
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        kind = _KIND_OF_STATUS.get(error.status, ErrorKind.INVALID_REQUEST)
        message = error.reason if error.status != 404 else "No such route."
        response = error_response(
            ApiError(kind, message, status=error.status), resolve_dialect(request)
        )
        allow = error.headers.get("Allow")
        if allow is not None:  # a 405 says which methods the route takes (RFC 9110)
            response.headers["Allow"] = allow
        return response
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    internal = ApiError(ErrorKind.INTERNAL, "Something went wrong on our end.")
    return error_response(internal, resolve_dialect(request))


def error_middleware(resolve_dialect: DialectResolver) -> web.middleware:  # type: ignore[valid-type]
    """Turn ApiError, aiohttp's HTTP errors and crashes into envelopes; never leak a trace."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as error:
            return answer_error(request, error, resolve_dialect)

    return middleware


_KIND_OF_STATUS = {
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.METHOD_NOT_ALLOWED,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    415: ErrorKind.UNSUPPORTED_MEDIA_TYPE,
}
