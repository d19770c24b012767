"""Structured logs: one JSON object a line for machines, or plain text for people.

Also the one filter on a library's logger that the service needs (see
:class:`UndecodableBodyFilter`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError

AIOHTTP_SERVER_LOGGER = "aiohttp.server"

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line, with any ``extra=`` fields kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str, fmt: str) -> None:
    """Send the root logger's output to stderr in ``fmt`` ('json' or 'text')."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in ("aiokafka", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))


class UndecodableBodyFilter(logging.Filter):
    """Drops aiohttp's "Unhandled exception" record for a body that does not decode.

    A body that is not what its ``Content-Encoding`` says (a plain body sent as gzip) is
    the client's mistake, and the handler already answered it ``400 invalid_request``
    with ``Connection: close`` (``promptline.http.bodies``), or an earlier 4xx without
    reading it. aiohttp then drains what is left of the body before letting go of the
    connection, meets the same decoding error again, and logs it at ERROR with a
    traceback as an unhandled exception, which reads like a bug in the service. Only that
    record is dropped: aiohttp's message, with a ``RequestPayloadError`` caused by a
    ``ContentEncodingError``; every other record of the logger passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for exactly the record described above."""
        if record.msg != "Unhandled exception" or not record.exc_info:
            return True
        error = record.exc_info[1]
        undecodable = isinstance(error, RequestPayloadError) and isinstance(
            error.__cause__, ContentEncodingError
        )
        return not undecodable


def quiet_undecodable_bodies() -> None:
    """Install :class:`UndecodableBodyFilter` on aiohttp's server logger (once)."""
    logger = logging.getLogger(AIOHTTP_SERVER_LOGGER)
    if not any(isinstance(existing, UndecodableBodyFilter) for existing in logger.filters):
        logger.addFilter(UndecodableBodyFilter())
