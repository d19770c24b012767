"""Reading an event route's body: size-limited, JSON, an object, a valid model.

Routes read the body themselves (not with ``request.read()``) so that each has its own
size limit (one event is small, a batch is not) and a declared ``Content-Length`` over
the limit is refused before a byte of the body is read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel

from promptline.http.bodies import (
    BODY_READ_ERRORS,
    FAST_READ_MAX_BYTES,
    buffered_body,
    loads_body,
    parse_model,
    unreadable_body,
)
from promptline.http.codings import unsupported_coding
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Param
from schemas.idempotency import idempotency_key_problem

ModelT = TypeVar("ModelT", bound=BaseModel)

IDEMPOTENCY_HEADER = "Idempotency-Key"


def too_large(limit: int, size: int | None = None) -> ApiError:
    """The 413 envelope for a body over ``limit`` bytes."""
    got = f" ({size} bytes)" if size is not None else ""
    return ApiError(
        ErrorKind.PAYLOAD_TOO_LARGE,
        f"Request body is larger than this route's limit of {limit} bytes{got}.",
    )


def arrived_body(request: web.Request, limit: int) -> bytes | None:
    """The raw body if it has all arrived (no coroutine), a 413 past ``limit``; else None.

    A body with a ``Content-Encoding`` header is never taken here (None): it is for
    :func:`read_limited`, which checks the coding first. The usual body (small, all
    arrived, within the limit) is taken at once: its declared length, if any, is its
    length, so there is nothing more to check.
    """
    if hdrs.CONTENT_ENCODING in request.headers:
        return None
    content = request.content
    size = content.total_bytes
    if size <= limit and size <= FAST_READ_MAX_BYTES and content.is_eof() and not content.at_eof():
        try:
            return content.read_nowait()  # all of it is buffered, and nothing read it before
        except BODY_READ_ERRORS:
            pass  # the stream failed after it arrived: buffered_body says None as well
    _check_declared(request, limit)
    return _buffered_within(request, limit)


def _check_declared(request: web.Request, limit: int) -> None:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit, declared)


def _buffered_within(request: web.Request, limit: int) -> bytes | None:
    buffered = buffered_body(request)  # a small body that has all arrived: no coroutine
    if buffered is not None and len(buffered) > limit:
        raise too_large(limit)
    return buffered


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The raw body, or a 413 as soon as it is known to exceed ``limit`` bytes.

    The limit applies to the decoded body (a compressed body is counted as it inflates);
    a body that does not decode or is cut short is 400 ``invalid_request``. A coding the
    server does not take is 415, before the size: its decoded size is unknown.
    """
    unsupported = unsupported_coding(request)
    if unsupported is not None:
        raise unsupported
    _check_declared(request, limit)
    buffered = _buffered_within(request, limit)
    if buffered is not None:
        return buffered
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except BODY_READ_ERRORS as error:
        raise unreadable_body(error) from error
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 ``invalid_request`` if empty, malformed or not an object."""
    if not raw:
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body is missing; send a JSON object.")
    data = loads_body(raw)
    if not isinstance(data, dict):
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body must be a JSON object.")
    return data


async def read_model(
    request: web.Request, model: type[ModelT], limit: int, kind: ErrorKind
) -> ModelT:
    """Read, parse and validate the body; field errors are raised as ``kind``."""
    return parse_model(model, parse_object(await read_limited(request, limit)), kind)


IDEMPOTENCY_PARAM = Param(
    IDEMPOTENCY_HEADER, "Sending the same key again accepts the event once.", location="header"
)
"""The header as the API document describes it for a route taking one event."""


def idempotency_header(request: web.Request, kind: ErrorKind) -> str | None:
    """The ``Idempotency-Key`` header, checked like the body's fields (error ``kind``)."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    problem = idempotency_key_problem(value)
    if problem is not None:
        raise ApiError(kind, f"{IDEMPOTENCY_HEADER}: {problem}.", field=IDEMPOTENCY_HEADER)
    return value
