"""The aiohttp application: ClickHouse's HTTP routes, answered by the chDB engine.

Responses carry the headers clickhouse-connect reads (format, summary, query id,
timezone, display name) and go out uncompressed, which every client accepts. Errors
are the real server's: its HTTP status for the error, the code in
``X-ClickHouse-Exception-Code`` and ``Code: N. DB::Exception: ... (NAME)`` as the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from aiohttp import web

from promptline.devstack.chdb_server.engine import ChdbEngine, Outcome, Statement
from promptline.devstack.chdb_server.errors import STD_EXCEPTION, ClickHouseError
from promptline.devstack.chdb_server.request import prepare_statement, read_http_query

log = logging.getLogger(__name__)

ENGINE = web.AppKey("engine", ChdbEngine)
DISPLAY_NAME = web.AppKey("display_name", str)
# Bodies are read whole before chDB sees them; local inserts stay far below this.
MAX_BODY_BYTES = 1 << 30

_TEXT = "text/plain; charset=UTF-8"
_CONTENT_TYPES = {
    "Native": "application/octet-stream",
    "RowBinary": "application/octet-stream",
    "RowBinaryWithNames": "application/octet-stream",
    "RowBinaryWithNamesAndTypes": "application/octet-stream",
    "Parquet": "application/octet-stream",
    "Arrow": "application/octet-stream",
    "ArrowStream": "application/octet-stream",
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
}


def create_app(engine: ChdbEngine, display_name: str) -> web.Application:
    """The HTTP app over ``engine``; the caller owns the engine's lifetime.

    ``display_name`` is the X-ClickHouse-Server-Display-Name (the real server's hostname).
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[ENGINE] = engine
    app[DISPLAY_NAME] = display_name
    app.router.add_get("/ping", _ok)
    app.router.add_get("/", _query)
    app.router.add_post("/", _query)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="Ok.\n", content_type="text/html")


def _common_headers(
    request: web.Request, query_id: str, timezone: str | None = None
) -> dict[str, str]:
    return {
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": timezone or request.app[ENGINE].timezone,
        "X-ClickHouse-Server-Display-Name": request.app[DISPLAY_NAME],
    }


def _summary(outcome: Outcome) -> str:
    counters = {
        "read_rows": outcome.read_rows,
        "read_bytes": outcome.read_bytes,
        "written_rows": outcome.written_rows,
        "written_bytes": outcome.written_bytes,
        "total_rows_to_read": outcome.read_rows,
        "result_rows": outcome.result_rows,
        "result_bytes": outcome.result_bytes,
        "elapsed_ns": outcome.elapsed_ns,
    }
    return json.dumps({key: str(value) for key, value in counters.items()}, separators=(",", ":"))


def _error_response(request: web.Request, error: ClickHouseError, query_id: str) -> web.Response:
    headers = _common_headers(request, query_id)
    headers["X-ClickHouse-Exception-Code"] = str(error.code)
    headers["Content-Type"] = _TEXT
    return web.Response(
        status=error.http_status,
        body=error.response_text(request.app[ENGINE].version).encode(),
        headers=headers,
    )


async def _run(request: web.Request, query_id: str) -> tuple[Statement, Outcome, str]:
    http_query = await read_http_query(request, query_id)
    statement = await asyncio.to_thread(prepare_statement, http_query)
    return statement, await request.app[ENGINE].execute(statement), http_query.query_id


async def _query(request: web.Request) -> web.Response:
    """``GET /`` answers Ok.; with ``query`` (or any POST) it runs the statement."""
    if request.method == "GET" and "query" not in request.query:
        return await _ok(request)
    query_id = request.query.get("query_id") or str(uuid.uuid4())
    try:
        statement, outcome, query_id = await _run(request, query_id)
    except ClickHouseError as error:
        log.debug("query %s failed: %s", query_id, error.text)
        return _error_response(request, error, query_id)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("query %s failed unexpectedly", query_id)
        return _error_response(request, ClickHouseError.of(STD_EXCEPTION, repr(exc)), query_id)
    # A request's own session_timezone is the zone its DateTime values are read in.
    headers = _common_headers(request, query_id, statement.settings.get("session_timezone"))
    headers["X-ClickHouse-Summary"] = _summary(outcome)
    result_format = statement.result_format or (statement.output_format if outcome.body else None)
    if result_format is not None:
        headers["X-ClickHouse-Format"] = result_format
        headers["Content-Type"] = _CONTENT_TYPES.get(result_format, _TEXT)
    else:
        headers["Content-Type"] = _TEXT
    return web.Response(body=outcome.body, headers=headers)
