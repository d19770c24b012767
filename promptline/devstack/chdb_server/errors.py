"""ClickHouse-shaped errors: the code, the symbolic name, the text and the HTTP status.

Clients (clickhouse-connect among them) read the code from the
``X-ClickHouse-Exception-Code`` header and the name from the body's ``(NAME)``, so
chDB's messages are passed through with both recovered, and this server's own errors
are worded the way the real server words them.
"""

from __future__ import annotations

import re

# Error codes this server raises itself (numbers as in ClickHouse's ErrorCodes.cpp).
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
BAD_ARGUMENTS = (36, "BAD_ARGUMENTS")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
CANNOT_DECOMPRESS = (271, "CANNOT_DECOMPRESS")
ZLIB_INFLATE_FAILED = (354, "ZLIB_INFLATE_FAILED")
ZSTD_DECODER_FAILED = (561, "ZSTD_DECODER_FAILED")
LZ4_DECODER_FAILED = (618, "LZ4_DECODER_FAILED")
STD_EXCEPTION = (1001, "STD_EXCEPTION")

_CODE = re.compile(r"Code: (\d+)\. ")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")
_VERSION_TRAILER = re.compile(r"\s*\(version\s+(?:[^()]|\([^()]*\))*\)\s*$")

# The real server's exceptionCodeToHTTPStatus, by error name.
_HTTP_STATUS_BY_NAME: dict[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        (
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "CANNOT_SCHEDULE_TASK": 503,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}


class ClickHouseError(Exception):
    """An error to send the client: ``text`` reads like the real server's exception text."""

    def __init__(self, code: int, name: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.name = name
        self.text = text

    @classmethod
    def of(cls, error: tuple[int, str], message: str) -> ClickHouseError:
        """One of this server's own errors, e.g. ``ClickHouseError.of(SYNTAX_ERROR, "...")``."""
        code, name = error
        return cls(code, name, f"Code: {code}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_chdb(cls, raw: str) -> ClickHouseError:
        """chDB's exception text, which already reads ``Code: N. DB::Exception: ... (NAME)``.

        Words chDB's Python wrappers put before the code are dropped. A
        message without a code (a Python-side failure) becomes STD_EXCEPTION.
        """
        start = raw.find("Code: ")
        code_match = _CODE.match(raw, start) if start >= 0 else None
        if code_match is None:
            return cls.of(STD_EXCEPTION, raw.rstrip(". "))
        text = raw[start:].rstrip()
        name_match = _NAME.search(_VERSION_TRAILER.sub("", text))
        name = name_match.group(1) if name_match else "UNKNOWN_EXCEPTION"
        return cls(int(code_match.group(1)), name, text)

    @property
    def http_status(self) -> int:
        """The status the real server answers this error with (500 unless it maps it)."""
        return _HTTP_STATUS_BY_NAME.get(self.name, 500)

    def response_text(self, version: str) -> str:
        """The response body: the text, the server version trailer, a newline."""
        if _VERSION_TRAILER.search(self.text):
            return f"{self.text}\n"
        return f"{self.text} (version {version})\n"
