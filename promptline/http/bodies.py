"""Reading JSON request bodies and writing JSON responses with orjson and pydantic."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import orjson
from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from promptline.http.codings import unsupported_coding
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


FAST_READ_MAX_BYTES = 16 * 1024
"""Bodies up to this size, fully received, skip ``request.read()`` (see read_body); far
below aiohttp's ``client_max_size`` (1 MiB, which promptline's apps keep), so that limit still
applies."""


def unreadable_body(error: Exception) -> ApiError:
    """The 400 ``invalid_request`` for a body that could not be read (see BODY_READ_ERRORS).

    It answers with ``Connection: close``: aiohttp's parser cannot find the next request
    on a connection whose body failed to decode, so a client told keep-alive would reuse
    it and see its next request fail with a disconnect instead of being answered.
    """
    if isinstance(error, ConnectionResetError):
        return ApiError(
            ErrorKind.INVALID_REQUEST,
            "The connection closed before the body was read.",
            close_connection=True,
        )
    return ApiError(
        ErrorKind.INVALID_REQUEST,
        "Request body could not be read: it does not decode as its Content-Encoding "
        "header says, or it ended before its declared length.",
        close_connection=True,
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response encoded by orjson (datetimes as ISO 8601, UUIDs as strings)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; a clear 400 for an empty or malformed one.

    A body that cannot be read (not what its ``Content-Encoding`` says, broken framing,
    a client that hangs up mid-body) is a 400 rather than a logged crash; one in a coding
    the server does not take is a 415 (``promptline.http.codings``).
    """
    try:
        raw = await read_body(request)
    except BODY_READ_ERRORS as error:
        raise unreadable_body(error) from error
    if not raw:
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body is missing; send a JSON object.")
    return loads_body(raw)


async def read_body(request: web.Request) -> bytes:
    """The whole body, taken from the buffer in one call when it has all arrived.

    A body with a ``Content-Encoding`` is never taken from the buffer, so its coding is
    checked here, before it is read: 415 if the server does not take it.
    """
    raw = buffered_body(request)
    if raw is not None:
        return raw
    unsupported = unsupported_coding(request)
    if unsupported is not None:
        raise unsupported
    return await request.read()


def buffered_body(request: web.Request) -> bytes | None:
    """The whole body if it has all arrived and nothing has read it yet, else None.

    A small body usually arrives with its headers, so by the time the handler runs the
    parser has fed all of it and the end of stream. ``request.read()`` would still loop
    over ``readany()`` into a bytearray and copy it out again, which costs resolve, the
    hot path, more than parsing its JSON; and a caller that finds the body here needs no
    coroutine to read it. Anything else (a body still arriving, one past
    ``FAST_READ_MAX_BYTES``, where ``request.read()`` enforces the app's size limit, one
    already read, which ``request.read()`` keeps) is None: read it with ``read_body``.
    So is a body whose stream failed after it arrived (the client hung up before the
    handler ran): ``read_json`` turns that failure into its 400, callers here never see it.
    And so is a body with a ``Content-Encoding`` header, whatever it says: ``read_body``
    checks that the server takes the coding, so only such bodies pay for the check.
    """
    content = request.content
    if content.is_eof() and not content.at_eof() and content.total_bytes <= FAST_READ_MAX_BYTES:
        if hdrs.CONTENT_ENCODING in request.headers:
            return None
        try:
            return content.read_nowait()  # all of it is buffered, and nothing read it before
        except BODY_READ_ERRORS:
            return None
    return None


def loads_body(raw: bytes) -> Any:
    """``raw`` parsed as JSON; 400 ``invalid_request`` saying why it is not JSON.

    orjson refuses ``NaN``, ``Infinity`` and numbers beyond a double's range (``1e999``)
    as it should, but says only where in the text: the body is then parsed again
    leniently to name the field that holds the number (``latency_ms``,
    ``events.3.score``). That second parse happens only for such bodies.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        path = _non_finite_path(raw) if _may_be_non_finite(raw, error) else None
        if path is not None:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"{path}: must be a finite number; NaN, Infinity and numbers beyond the "
                "range of a double are not JSON.",
                field=path,
            ) from error
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"Request body is not valid JSON: {error}"
        ) from error


class _NonFinite:
    """Stands in for a non-finite number in the lenient parse."""


def _may_be_non_finite(raw: bytes, error: orjson.JSONDecodeError) -> bool:
    """Cheap test that orjson may have refused a non-finite number (else skip the reparse)."""
    return "infinity" in str(error) or b"NaN" in raw or b"Infinity" in raw


def _lenient_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite()


def _non_finite_path(raw: bytes) -> str | None:
    """The dotted path of the first non-finite number in ``raw``, if that is what is wrong."""
    try:
        data = json.loads(
            raw, parse_constant=lambda _name: _NonFinite(), parse_float=_lenient_float
        )
    except (ValueError, RecursionError):
        return None  # not JSON for another reason as well: report orjson's error
    try:
        path = _find_non_finite(data)
    except RecursionError:
        return None
    if path is None:
        return None
    return ".".join(path) or "body"


def _find_non_finite(value: Any) -> list[str] | None:
    """Keys and indexes leading to the first non-finite stand-in, depth first."""
    if isinstance(value, _NonFinite):
        return []
    children: Any
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, child in children:
        found = _find_non_finite(child)
        if found is not None:
            return [str(key), *found]
    return None


def parse_model(model: type[ModelT], data: Any, kind: ErrorKind = ErrorKind.VALIDATION) -> ModelT:
    """Validate ``data`` as ``model``, or raise an ApiError naming the field at fault."""
    if not isinstance(data, dict):
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        field, message = describe_validation_error(error)
        raise ApiError(kind, message, field=field) from error
