"""Route families: each seed document's routes keep the error codes that seed documents.

- ``/v1/...`` (seed 001) and ``/api/v1/prompts/...`` (seeds 000 and 004): lower-case
  codes such as ``invalid_request``, ``validation_error``, ``rate_limited``.
- ``/api/v1/prompt-templates`` (seed 003): upper-case codes, ``VALIDATION_ERROR`` for any
  bad input and ``RATE_LIMIT_EXCEEDED``.
- ``/dashboard/...`` (seed 002): lower-case, as the default.
"""

from __future__ import annotations

from aiohttp import web

from promptline.http.errors import DEFAULT_DIALECT, ErrorDialect, ErrorKind

TEMPLATES_DIALECT = ErrorDialect(
    "templates",
    {kind: kind.value.upper() for kind in ErrorKind}
    | {
        ErrorKind.INVALID_REQUEST: "VALIDATION_ERROR",
        ErrorKind.RATE_LIMITED: "RATE_LIMIT_EXCEEDED",
    },
)

_BY_PREFIX: tuple[tuple[str, ErrorDialect], ...] = (
    ("/api/v1/prompt-templates", TEMPLATES_DIALECT),
)


def dialect_for(request: web.Request) -> ErrorDialect:
    """The error dialect of the family that serves this path."""
    return dialect_of_path(request.path)


def dialect_of_path(path: str) -> ErrorDialect:
    """The error dialect of the family that serves ``path`` (also for the API document)."""
    for prefix, dialect in _BY_PREFIX:
        if path.startswith(prefix):
            return dialect
    return DEFAULT_DIALECT
