"""A ClickHouse HTTP request taken apart: query text, data, context, settings, parameters.

Follows the real server's HTTPHandler: the SQL is the ``query`` URL parameter, a
newline, then the request body (either may be empty); ``multipart/form-data`` carries
``query`` and ``param_*`` as form fields, and files as external tables (with their
``NAME_structure``/``_types``/``_format`` parameters). Every other URL parameter is a setting,
except the interface's own parameters and the transport-only settings listed below.

Accepted and ignored, because they make no sense in-process:
- ``user``/``password`` (also Basic auth, ``X-ClickHouse-User``/``-Key``): local mode
  has one unrestricted user; ``quota_key``, ``role`` likewise.
- ``session_id``, ``session_timeout``, ``session_check``, ``close_session``: there is one
  shared chDB session. A client's own ``SET`` or ``CREATE TEMPORARY TABLE`` works but is
  visible to every client until the server restarts; per-query settings are isolated.
- ``compress``/``decompress`` (ClickHouse's native block compression), ``buffer_size``,
  ``wait_end_of_query`` (responses are always buffered whole), ``client_protocol_version``
  (Native output is always the revision-0 layout, which clickhouse-connect reads).
- the transport settings in IGNORED_SETTINGS: HTTP response compression and progress
  headers (responses go out uncompressed), and ``readonly``, which could not be unset
  again on the shared session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from promptline.devstack.chdb_server.encoding import decode_body
from promptline.devstack.chdb_server.engine import ExternalTable, Statement
from promptline.devstack.chdb_server.errors import (
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    SYNTAX_ERROR,
    ClickHouseError,
)
from promptline.devstack.chdb_server.params import is_param, query_params
from promptline.devstack.chdb_server.sql import (
    RESULT_KEYWORDS,
    analyze_query,
    decode_sql,
    split_insert,
)

DEFAULT_FORMAT = "TabSeparated"

# The HTTP interface's own parameters: never settings.
INTERFACE_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "role",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "stacktrace",
        "client_protocol_version",
        "http_native_compression_disable_checksumming_on_decompress",
    }
)

# Real settings that only steer the HTTP transport (or would lock the shared session).
IGNORED_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "http_zlib_compression_level",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header",
        "http_wait_end_of_query",
        "http_response_buffer_size",
        "http_write_exception_in_output_format",
        "readonly",
    }
)


@dataclass(frozen=True, slots=True)
class HttpQuery:
    """The request's parts, read off the loop's request object; the body still encoded."""

    query_param: str
    body: bytes
    content_encoding: str | None
    database: str
    default_format: str
    settings: dict[str, str]
    params: dict[str, str]
    query_id: str
    external: tuple[ExternalTable, ...] = ()


def _form_value(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise ClickHouseError.of(NOT_IMPLEMENTED, f"Form field '{key}' is neither text nor a file")


def _columns_of_types(types: str) -> str:
    """``_1 T1, _2 T2, ...`` for ``{name}_types`` (commas inside parentheses kept)."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(types + ","):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(types[start:index].strip())
            start = index + 1
    return ", ".join(f"_{number} {kind}" for number, kind in enumerate(parts, 1))


def _external_tables(files: dict[str, bytes], fields: dict[str, str]) -> tuple[ExternalTable, ...]:
    """The external tables the files are, as the real server reads them: each file's field
    name is the table's; ``{name}_structure`` (or ``_types``) and ``{name}_format`` say how."""
    tables = []
    for name, data in files.items():
        structure = fields.get(f"{name}_structure")
        types = fields.get(f"{name}_types")
        if structure is None and types is None:
            raise ClickHouseError.of(
                BAD_ARGUMENTS, f"Neither structure nor types have not been provided for {name}"
            )
        tables.append(
            ExternalTable(
                name=name,
                structure=structure if structure is not None else _columns_of_types(types or ""),
                fmt=fields.get(f"{name}_format") or "TabSeparated",
                data=data,
            )
        )
    return tuple(tables)


def _external_params(files: dict[str, bytes]) -> frozenset[str]:
    return frozenset(
        f"{name}_{part}" for name in files for part in ("structure", "types", "format")
    )


async def read_http_query(request: web.Request, query_id: str) -> HttpQuery:
    """Collect URL parameters, form fields and the raw body (aiohttp reads without blocking).

    ``query_id`` is the id to use when the request names none.
    """
    fields: list[tuple[str, str]] = list(request.query.items())
    body = b""
    files: dict[str, bytes] = {}
    if request.content_type == "multipart/form-data":
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files.setdefault(key, await asyncio.to_thread(value.file.read))
            else:
                fields.append((key, _form_value(key, value)))
    elif request.can_read_body:
        body = await request.read()
    first: dict[str, str] = {}
    for key, value in fields:
        first.setdefault(key, value)
    external_params = _external_params(files)
    settings = {
        key: value
        for key, value in first.items()
        if key not in INTERFACE_PARAMS
        and key not in IGNORED_SETTINGS
        and key not in external_params
        and not is_param(key)
    }
    return HttpQuery(
        query_param=first.get("query", ""),
        body=body,
        content_encoding=request.headers.get("Content-Encoding"),
        database=request.headers.get("X-ClickHouse-Database") or first.get("database") or "default",
        default_format=first.get("default_format")
        or request.headers.get("X-ClickHouse-Format")
        or DEFAULT_FORMAT,
        settings=settings,
        params=query_params(fields),
        query_id=first.get("query_id") or query_id,
        external=_external_tables(files, first),
    )


def prepare_statement(query: HttpQuery) -> Statement:
    """Decode the body and cut the SQL from any INSERT data (CPU work: run it in a thread)."""
    body = decode_body(query.body, query.content_encoding)
    text = query.query_param.encode() + b"\n" + body if query.query_param else body
    insert = split_insert(text)
    if insert is not None:
        analyze_query(insert.statement.encode())  # rejects ``...; INSERT ... FORMAT``
        return Statement(
            sql=insert.head,
            insert_format=insert.fmt,
            insert_data=insert.data,
            insert_settings=insert.settings,
            keyword="INSERT",
            database=query.database,
            settings=query.settings,
            params=query.params,
            output_format=query.default_format,
        )
    shape = analyze_query(text)
    if shape.empty:
        raise ClickHouseError.of(SYNTAX_ERROR, "Empty query")
    produces_result = shape.keyword in RESULT_KEYWORDS or shape.output_format is not None
    return Statement(
        sql=decode_sql(text),
        database=query.database,
        settings=query.settings,
        params=query.params,
        output_format=query.default_format,
        result_format=(shape.output_format or query.default_format) if produces_result else None,
        keyword=shape.keyword,
        external=query.external,
    )
