"""Just enough of ClickHouse's SQL lexer to cut a request into statement and data.

chDB's ``query()`` takes SQL text only, so for ``INSERT ... FORMAT X`` the server must
find where the statement ends and its data (often binary Native) begins, by the same
rule as ClickHouse's parser, and must never scan into that data. The lexer works on
bytes and understands quotes, heredocs, comments and brackets; nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from promptline.devstack.chdb_server.errors import BAD_ARGUMENTS, SYNTAX_ERROR, ClickHouseError

WORD, QUOTED, NUMBER, PUNCT = "word", "quoted", "number", "punct"

_SPACE = frozenset(b" \t\n\r\f\v")
_QUOTES = frozenset(b"'\"`")
_OPEN = frozenset(b"([{")
_CLOSE = frozenset(b")]}")
_HEREDOC = re.compile(rb"\$([A-Za-z0-9_]*)\$")
# Where the word FORMAT/VALUES/SELECT is a name, not a clause: ``INSERT INTO format``.
_NAME_CONTEXT = frozenset({b"INTO", b"TABLE", b"FUNCTION", b"AS", b"."})
# Statements that answer with a result set, so the response names its format.
RESULT_KEYWORDS = frozenset(
    {"SELECT", "WITH", "FROM", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}
)


@dataclass(frozen=True, slots=True)
class Token:
    """A token's kind and its byte span in the request."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class InsertWithData:
    """``INSERT ... FORMAT X`` cut in three: statement (no FORMAT), format name, data.

    ``settings`` is the statement's own trailing ``SETTINGS ...`` clause ("" if it has
    none), which ``head`` leaves out: clauses such as ``FROM INFILE`` go between the two.
    """

    statement: str
    fmt: str
    data: bytes
    settings: str = ""

    @property
    def head(self) -> str:
        """The statement without its SETTINGS clause."""
        if not self.settings:
            return self.statement
        return self.statement[: len(self.statement) - len(self.settings)].rstrip()


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What the server needs to know about a whole statement before running it."""

    keyword: str
    output_format: str | None
    empty: bool


def _is_word_start(byte: int) -> bool:
    return byte == 0x5F or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A or byte >= 0x80


def _is_word_part(byte: int) -> bool:
    return _is_word_start(byte) or 0x30 <= byte <= 0x39


def _skip_quoted(buf: bytes, start: int) -> int:
    """End of a quoted string or identifier: backslash escapes, doubled quote."""
    quote = buf[start]
    i = start + 1
    while i < len(buf):
        byte = buf[i]
        if byte == 0x5C:
            i += 2
        elif byte == quote:
            if i + 1 < len(buf) and buf[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(buf)


def _skip_block_comment(buf: bytes, start: int) -> int:
    """End of a ``/* */`` comment; ClickHouse lets them nest."""
    depth, i = 0, start
    while i < len(buf):
        if buf.startswith(b"/*", i):
            depth += 1
            i += 2
        elif buf.startswith(b"*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(buf)


def tokens(buf: bytes) -> Iterator[Token]:
    """The tokens of ``buf``, without whitespace and comments; lazy, so callers stop early."""
    i, size = 0, len(buf)
    while i < size:
        byte = buf[i]
        if byte in _SPACE:
            i += 1
        elif buf.startswith(b"--", i) or (
            byte == 0x23 and (i + 1 == size or buf[i + 1] in _SPACE or buf[i + 1] == 0x21)
        ):
            newline = buf.find(b"\n", i)
            i = size if newline < 0 else newline + 1
        elif buf.startswith(b"/*", i):
            i = _skip_block_comment(buf, i)
        elif byte in _QUOTES:
            end = _skip_quoted(buf, i)
            yield Token(QUOTED, i, end)
            i = end
        elif byte == 0x24 and (heredoc := _HEREDOC.match(buf, i)) is not None:
            close = buf.find(heredoc.group(0), heredoc.end())
            end = size if close < 0 else close + len(heredoc.group(0))
            yield Token(QUOTED, i, end)
            i = end
        elif _is_word_part(byte):
            numeric = not _is_word_start(byte)
            end = i + 1
            while end < size and (_is_word_part(buf[end]) or (numeric and buf[end] == 0x2E)):
                end += 1
            yield Token(NUMBER if numeric else WORD, i, end)
            i = end
        else:
            yield Token(PUNCT, i, i + 1)
            i += 1


def _data_start(buf: bytes, pos: int) -> int:
    """Where INSERT data begins after the format name (ParserInsertQuery's rule)."""
    if pos < len(buf) and buf[pos] == 0x3B:
        raise ClickHouseError.of(
            SYNTAX_ERROR,
            "You have excessive ';' symbol before data for INSERT; "
            "put at least one whitespace symbol before the data",
        )
    while pos < len(buf) and buf[pos] in b" \t\f":
        pos += 1
    if pos < len(buf) and buf[pos] == 0x0D:
        pos += 1
    if pos < len(buf) and buf[pos] == 0x0A:
        pos += 1
    return pos


def decode_sql(raw: bytes) -> str:
    """SQL text for chDB, which takes ``str``: it must be UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClickHouseError.of(
            BAD_ARGUMENTS, f"The query is not valid UTF-8 at byte {exc.start}"
        ) from None


def split_insert(buf: bytes) -> InsertWithData | None:
    """Cut ``INSERT ... FORMAT X <data>``; None for anything else (VALUES, SELECT, DDL ...)."""
    stream = tokens(buf)
    first = next(stream, None)
    if first is None or buf[first.start : first.end].upper() != b"INSERT":
        return None
    depth, previous = 0, b"INSERT"
    settings_start: int | None = None
    for token in stream:
        text = buf[token.start : token.end]
        if token.kind == PUNCT and buf[token.start] in _OPEN:
            depth += 1
        elif token.kind == PUNCT and buf[token.start] in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and token.kind == WORD and previous.upper() not in _NAME_CONTEXT:
            word = text.upper()
            if word in (b"VALUES", b"SELECT", b"WITH"):
                return None
            if word == b"SETTINGS" and settings_start is None:
                settings_start = token.start
            if word == b"FORMAT":
                name = next(stream, None)
                if name is None or name.kind != WORD:
                    return None
                settings = b"" if settings_start is None else buf[settings_start : token.start]
                return InsertWithData(
                    statement=decode_sql(buf[: token.start]).rstrip(),
                    fmt=buf[name.start : name.end].decode("ascii", "replace"),
                    data=buf[_data_start(buf, name.end) :],
                    settings=decode_sql(settings).rstrip(),
                )
        previous = text
    return None


def analyze_query(buf: bytes) -> QueryShape:
    """First keyword and explicit output format; rejects multi-statements as the server does."""
    top: list[tuple[Token, bytes]] = []
    keyword: str | None = None
    depth = 0
    semicolon: int | None = None
    for token in tokens(buf):
        text = buf[token.start : token.end]
        if semicolon is not None and text != b";":
            raise ClickHouseError.of(
                SYNTAX_ERROR,
                "Syntax error (Multi-statements are not allowed): "
                f"failed at position {semicolon + 1} (end of query)",
            )
        opens = token.kind == PUNCT and text[0] in _OPEN
        if keyword is None and not opens and text != b";":
            keyword = text.decode("utf-8", "replace").upper() if token.kind == WORD else ""
        if opens:
            depth += 1
        elif token.kind == PUNCT and text[0] in _CLOSE:
            depth = max(0, depth - 1)
        elif text == b";":
            semicolon = token.start
        elif depth == 0:
            top.append((token, text))
    output_format = None
    for index in range(len(top) - 1):
        (clause, clause_text), (name, name_text) = top[index], top[index + 1]
        after = top[index + 2][1].upper() if index + 2 < len(top) else b"SETTINGS"
        if (
            clause.kind == WORD
            and name.kind == WORD
            and clause_text.upper() == b"FORMAT"
            and after == b"SETTINGS"
        ):
            output_format = name_text.decode("ascii", "replace")
    return QueryShape(keyword=keyword or "", output_format=output_format, empty=keyword is None)
