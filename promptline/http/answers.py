"""``200`` JSON and ``204`` answers built without aiohttp's general-purpose Response constructor.

``web.Response(body=..., content_type=...)`` runs two ``__init__`` methods, a header
merge, the ``text``/``charset``/``content_type`` checks and the ``body`` setter's type
dispatch: about 1 µs, more than encoding resolve's whole answer. :func:`ok_json` builds the
same object by setting the instance attributes that constructor sets, about a quarter of
the cost, for resolve, the hot path; :func:`no_content` builds ``web.Response(status=204)``
the same way, for the edge's single events.

Those attributes are aiohttp's private ones, so this module checks, when it is imported,
that an answer built its way has exactly the attributes and values of one built the usual
way. If a later aiohttp sets anything else, :func:`ok_json` is the usual constructor: the
answer stays right and only the shortcut is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict

CONTENT_TYPE = "application/json"
_USUAL = web.Response(body=b"{}", content_type=CONTENT_TYPE)
_HEADERS: CIMultiDict[str] = CIMultiDict({hdrs.CONTENT_TYPE: CONTENT_TYPE})
_REASON = _USUAL.reason
_NO_CONTENT_REASON = web.Response(status=204).reason
_ZLIB_EXECUTOR_SIZE: int = getattr(_USUAL, "_zlib_executor_size", 0)


class _LeanJsonAnswer(web.Response):
    """A Response whose constructor sets the attributes ``web.Response`` would, directly."""

    def __init__(self, body: bytes) -> None:  # web.Response.__init__ is what this skips
        self._state: dict[Any, Any] = {}
        self._headers = _HEADERS.copy()
        self._status = 200
        self._reason = _REASON
        self._body = body
        self._compressed_body = None
        self._zlib_executor_size = _ZLIB_EXECUTOR_SIZE
        self._zlib_executor = None


def _usual(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=CONTENT_TYPE)


class _LeanNoContent(web.Response):
    """``web.Response(status=204)`` with its attributes set directly, as above."""

    def __init__(self) -> None:  # web.Response.__init__ is what this skips
        self._state: dict[Any, Any] = {}
        self._headers = CIMultiDict()
        self._status = 204
        self._reason = _NO_CONTENT_REASON
        self._body = None
        self._compressed_body = None
        self._zlib_executor_size = _ZLIB_EXECUTOR_SIZE
        self._zlib_executor = None


def _usual_no_content() -> web.Response:
    return web.Response(status=204)


def same_as_usual(build: Callable[[bytes], web.Response]) -> bool:
    """Whether ``build`` makes the object ``web.Response`` makes, attribute for attribute."""
    return same_objects(build(b"{}"), _usual(b"{}"))


def same_objects(lean: web.Response, usual: web.Response) -> bool:
    """Whether two answers have the same attributes, of the same types and values."""
    if vars(lean).keys() != vars(usual).keys():
        return False
    return all(
        value == getattr(usual, name) and type(value) is type(getattr(usual, name))
        for name, value in vars(lean).items()
    )


ok_json: Callable[[bytes], web.Response] = (
    _LeanJsonAnswer if same_as_usual(_LeanJsonAnswer) else _usual
)
"""``web.Response(body=body, content_type="application/json")``, built faster when it can be."""
no_content: Callable[[], web.Response] = (
    _LeanNoContent if same_objects(_LeanNoContent(), _usual_no_content()) else _usual_no_content
)
"""``web.Response(status=204)``, built faster when it can be."""
