"""The content codings a request body may arrive in: gzip, deflate, or none (identity).

aiohttp inflates a gzip or deflate body as it is read (so size limits count decoded
bytes); ``identity`` means no coding. Every other ``Content-Encoding`` (``br``, ``zstd``,
``compress``, a name nobody knows, a list of codings) is refused with 415 before the body
is read, on every route that reads one: aiohttp would hand an unknown coding's bytes
over as they came, to fail as "not JSON" or, worse, to be taken as a plain body. A list
is refused too, even of codings taken one by one: aiohttp decodes a single coding only.

``br`` and ``zstd`` are refused as well although the service installs their decoders:
without them aiohttp's parser answers such a request itself, before any route runs, in
plain text naming a package to install, and without the path it cannot know the route's
family or CORS policy. With them the request reaches the route, which answers it here.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from promptline.http.errors import ApiError, ErrorKind

ACCEPTED_CODINGS = ("gzip", "deflate", "identity")
"""What a request body's ``Content-Encoding`` may say, as the 415 and the docs list them."""
ACCEPT_ENCODING = ", ".join(ACCEPTED_CODINGS)
"""The 415's ``Accept-Encoding`` header (RFC 9110, 15.5.16): the codings a retry may use."""

_INFLATED = frozenset({"gzip", "deflate"})
"""Header values aiohttp inflates and the server takes: the whole value, in any case."""
_DECODED_BY_AIOHTTP = frozenset({"gzip", "deflate", "br", "zstd"})
"""Header values aiohttp decodes itself as the body arrives."""
_SHOWN_MAX_CHARS = 100


def unsupported_coding(request: web.Request) -> ApiError | None:
    """The 415 for a body in a coding the server does not take, else None.

    Taken: no ``Content-Encoding`` header, one that names only ``identity`` (or
    nothing), or a single ``gzip`` or ``deflate``. A body that is not what an accepted
    header says is still the 400 of ``promptline.http.bodies.unreadable_body``.
    """
    values = request.headers.getall(hdrs.CONTENT_ENCODING, ())
    if not values:
        return None
    if len(values) == 1 and _is_one_of(values[0], _INFLATED):
        return None
    codings = [part.strip(" \t").lower() for value in values for part in value.split(",")]
    if all(coding in ("", "identity") for coding in codings):
        return None
    shown = ", ".join(values)
    if len(shown) > _SHOWN_MAX_CHARS:
        shown = shown[:_SHOWN_MAX_CHARS] + "..."
    return ApiError(
        ErrorKind.UNSUPPORTED_MEDIA_TYPE,
        f"Content-Encoding '{shown}' is not supported: send the body as "
        f"{', '.join(ACCEPTED_CODINGS[:-1])} or {ACCEPTED_CODINGS[-1]} (uncompressed), "
        "one coding only.",
        field=hdrs.CONTENT_ENCODING,
        headers={hdrs.ACCEPT_ENCODING: ACCEPT_ENCODING},
        # aiohttp may be decoding the refused body (br, zstd, or one of several header
        # lines): it would go on decoding it to drain it, and a body that does not decode
        # leaves the connection unusable, as in ``unreadable_body``. Other refused bodies
        # arrive as sent, and the connection stays open for the client's next request.
        close_connection=any(_is_one_of(value, _DECODED_BY_AIOHTTP) for value in values),
    )


def _is_one_of(value: str, codings: frozenset[str]) -> bool:
    """Whether a header value is exactly one of ``codings``, as aiohttp's parsers compare."""
    return value.isascii() and value.lower() in codings
