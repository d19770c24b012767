"""Reading JSON request bodies and writing JSON responses with orjson and pydantic."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from promptline.http.errors import ApiError, ErrorKind
from schemas.validation import describe_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)

BODY_READ_ERRORS: tuple[type[Exception], ...] = (web.RequestPayloadError, ConnectionResetError)
"""What reading a body raises when the client's bytes cannot become a body.

``RequestPayloadError``: the body does not decode as its ``Content-Encoding`` says (a
plain body sent as ``gzip``), or its framing is broken (truncated chunks, fewer bytes
than ``Content-Length``). ``ConnectionResetError``: the client hung up mid-body. Both
are the client's doing, so they are a 400, never a 500.
"""


UNREADABLE_BODY = web.RequestKey("unreadable_body", bool)


def unreadable_body(request: web.Request, error: Exception) -> ApiError:
    """The 400 ``invalid_request`` for a body that could not be read (see BODY_READ_ERRORS).

    The request is marked so that :func:`close_after_unreadable_body` answers with
    ``Connection: close``: aiohttp's parser cannot find the next request on a connection
    whose body failed to decode, and drops the connection after the answer.
    """
    request[UNREADABLE_BODY] = True
    if isinstance(error, ConnectionResetError):
        return ApiError(
            ErrorKind.INVALID_REQUEST, "The connection closed before the body was read."
        )
    return ApiError(
        ErrorKind.INVALID_REQUEST,
        "Request body could not be read: it does not decode as its Content-Encoding "
        "header says, or it ended before its declared length.",
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response encoded by orjson (datetimes as ISO 8601, UUIDs as strings)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def close_after_unreadable_body(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: tell the client not to reuse a connection that is lost.

    Without it the client is told keep-alive, reuses the connection, and its next
    request fails with a disconnect instead of being answered.
    """
    if request.get(UNREADABLE_BODY):
        response.force_close()
        # aiohttp settles the Connection header before this hook runs; say it ourselves.
        response.headers[hdrs.CONNECTION] = "close"


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; a clear 400 for an empty or malformed one.

    A body that cannot be read (bad ``Content-Encoding``, broken framing, a client that
    hangs up mid-body) is a 400 rather than a logged crash.
    """
    try:
        raw = await request.read()
    except BODY_READ_ERRORS as error:
        raise unreadable_body(request, error) from error
    if not raw:
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body is missing; send a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"Request body is not valid JSON: {error}"
        ) from error


def parse_model(model: type[ModelT], data: Any, kind: ErrorKind = ErrorKind.VALIDATION) -> ModelT:
    """Validate ``data`` as ``model``, or raise an ApiError naming the field at fault."""
    if not isinstance(data, dict):
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        field, message = describe_validation_error(error)
        raise ApiError(kind, message, field=field) from error
