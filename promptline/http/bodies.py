"""Reading JSON request bodies and writing JSON responses with orjson and pydantic."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from promptline.http.errors import ApiError, ErrorKind
from schemas.validation import describe_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response encoded by orjson (datetimes as ISO 8601, UUIDs as strings)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; a clear 400 for an empty or malformed one.

    A client that hangs up mid-body gets a 400 nobody reads, rather than a logged crash.
    """
    try:
        raw = await request.read()
    except ConnectionResetError as error:
        raise ApiError(
            ErrorKind.INVALID_REQUEST, "The connection closed before the body was read."
        ) from error
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
