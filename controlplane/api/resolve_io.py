"""The resolve route's request check and answer, written by hand for the hot path.

Resolve runs before every LLM call, so its body is checked without pydantic, its
timestamp formatted once per second, and the parts of its answer that depend only on the
version served and the rule that chose it (names, public ids, hash) are encoded once and
reused: per call only the content, the time and the missing variables are encoded. The
checks and messages are those the pydantic model gave (``prompt: Field required``...):
every bad input is a 400 naming the field. A prompt reference shorter than a UUID's 32
hex digits cannot be an id in any family's shape, so it goes straight to the name lookup
without a failed id parse.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from controlplane.api.presenters import iso
from controlplane.api.references import MAX_NAME_LENGTH, prompt_name_in_catalog
from controlplane.catalog import Catalog
from controlplane.ids import IdShape, encode
from controlplane.resolve import Resolution
from promptline.http.errors import ApiError, ErrorKind

MAX_USER_ID_LENGTH = 1_000
SHORTEST_ID = 32
"""No prompt id spelling (UUID, ``prm_``, ``pmt_``, ``tmpl-``) is shorter than 32 hex digits."""
MAX_CACHED_ANSWERS = 10_000
"""Encoded answer parts kept before the cache starts over (old deployments' linger)."""


ResolveRequest = tuple[str, str, dict[str, Any], bool]
"""A checked resolve body: ``(prompt, user_id, context, strict)``.

A plain tuple, unpacked by the handler: building a dataclass would cost the hot path
more than all of the checks that come before it."""


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_REQUEST, f"{field}: {message}", field=field)


def _text(data: dict[str, Any], field: str, max_length: int) -> str:
    value = data.get(field)
    if value is None:
        if field in data:
            raise _invalid(field, "Input should be a valid string")
        raise _invalid(field, "Field required")
    if type(value) is not str:
        raise _invalid(field, "Input should be a valid string")
    if not value:
        raise _invalid(field, "String should have at least 1 character")
    if len(value) > max_length:
        raise _invalid(field, f"String should have at most {max_length} characters")
    return value


def parse_resolve(data: Any) -> ResolveRequest:
    """``{"prompt", "user_id", "context"?, "strict"?}``, unknown fields ignored; else a 400.

    A well-formed body passes one run of type and length tests; only a body failing them
    goes through the field-by-field checks that say what is wrong.
    """
    if type(data) is dict:
        prompt = data.get("prompt")
        user_id = data.get("user_id")
        context = data.get("context")
        strict = data.get("strict", False)
        if (
            type(prompt) is str
            and 0 < len(prompt) <= MAX_NAME_LENGTH
            and type(user_id) is str
            and 0 < len(user_id) <= MAX_USER_ID_LENGTH
            and (type(context) is dict or context is None)
            and type(strict) is bool
        ):
            return prompt, user_id, context if context is not None else {}, strict
    return _checked(data)


def _checked(data: Any) -> ResolveRequest:
    """parse_resolve's field-by-field checks, raising the 400 for the first field at fault."""
    if type(data) is not dict:
        raise ApiError(ErrorKind.INVALID_REQUEST, "Request body must be a JSON object.")
    prompt = _text(data, "prompt", MAX_NAME_LENGTH)
    user_id = _text(data, "user_id", MAX_USER_ID_LENGTH)
    context = data.get("context")
    if context is None:
        context = {}
    elif type(context) is not dict:
        raise _invalid("context", "Input should be a valid dictionary")
    strict = data.get("strict")
    if strict is None:
        strict = False  # null is the same as leaving it out, as for context
    elif type(strict) is not bool:
        raise _invalid("strict", "Input should be a valid boolean")
    return prompt, user_id, context, strict


def prompt_name(catalog: Catalog, project_id: uuid.UUID, ref: str) -> str:
    """The name behind a prompt id of the project, else ``ref`` (see the module docstring)."""
    if len(ref) < SHORTEST_ID:
        return ref
    return prompt_name_in_catalog(catalog, project_id, ref)


class Answers:
    """Encodes seed 001's resolve answer, keeping the parts fixed per version and rule."""

    def __init__(self) -> None:
        self._second = -1
        self._stamp = b""
        """``resolved_at`` as ASCII bytes, formatted once per second (here, not in a helper
        of its own: a method call per answer cost more than the check)."""
        self._parts: dict[tuple[int, str, int | None, str], tuple[bytes, bytes]] = {}

    def encode(self, resolution: Resolution) -> bytes:
        """The JSON answer, byte for byte what ``orjson.dumps`` of the dict would give."""
        deployment = resolution.deployment_id
        key = (  # UUIDs by their ints: a UUID's hash is Python code, an int's is not
            resolution.version_id.int,
            resolution.traffic_rule,
            deployment.int if deployment is not None else None,
            resolution.prompt_name,
        )
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= MAX_CACHED_ANSWERS:
                self._parts.clear()
            parts = self._parts[key] = _fixed_parts(resolution)
        head, tail = parts
        second = int(time.time())
        if second != self._second:
            self._stamp = iso(datetime.fromtimestamp(second, UTC)).encode()
            self._second = second
        missing = resolution.missing_variables
        return b"".join(
            (
                head,
                orjson.dumps(resolution.content),
                b',"resolved_at":"',
                self._stamp,
                tail,
                orjson.dumps(list(missing)) if missing else b"[]",
                b"}",
            )
        )


def _fixed_parts(resolution: Resolution) -> tuple[bytes, bytes]:
    """What comes before the content, and what between the time and the missing list."""
    head = orjson.dumps({"prompt": resolution.prompt_name, "version": resolution.version})
    deployment = resolution.deployment_id
    tail = orjson.dumps(
        {
            "traffic_rule": resolution.traffic_rule,
            "prompt_id": encode(IdShape.PROMPT, resolution.prompt_id),
            "prompt_uuid": str(resolution.prompt_id),
            "version_id": encode(IdShape.VERSION, resolution.version_id),
            "content_hash": resolution.content_hash,
            "deployment_id": (
                encode(IdShape.DEPLOYMENT, deployment) if deployment is not None else None
            ),
        }
    )
    return head[:-1] + b',"content":', b'",' + tail[1:-1] + b',"missing_variables":'
