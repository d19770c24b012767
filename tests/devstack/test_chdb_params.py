"""The chDB server's pure request handling: parameters, SQL cutting, body decoding, errors.

No server and no chDB here; these pin down the rules the integration tests rely on.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from datetime import datetime

import lz4.frame
import pytest
from clickhouse_connect.driver.binding import bind_query

from promptline.devstack.chdb_server.encoding import decode_body
from promptline.devstack.chdb_server.engine import quote_identifier, quote_string
from promptline.devstack.chdb_server.errors import ClickHouseError
from promptline.devstack.chdb_server.params import query_params
from promptline.devstack.chdb_server.request import HttpQuery, prepare_statement
from promptline.devstack.chdb_server.sql import analyze_query, split_insert


def http_query(query_param: str = "", body: bytes = b"", encoding: str | None = None) -> HttpQuery:
    return HttpQuery(
        query_param=query_param,
        body=body,
        content_encoding=encoding,
        database="default",
        default_format="TabSeparated",
        settings={},
        params={},
        query_id="q",
    )


def test_params_are_passed_verbatim_as_clickhouse_connect_formats_them() -> None:
    _, bound = bind_query(
        "SELECT {s:String}, {a:Array(String)}, {d:DateTime}, {u:UUID}, {n:Nullable(Int8)}",
        {
            "s": "it's \\ a\ttab",
            "a": ["x'y", "z"],
            "d": datetime(2026, 1, 2, 3, 4, 5),
            "u": uuid.UUID(int=1),
            "n": None,
        },
    )
    params = query_params([*bound.items(), ("max_threads", "2")])
    assert params == {
        "s": "it\\'s \\\\ a\\\ttab",
        "a": "['x\\'y', 'z']",
        "d": "2026-01-02 03:04:05",
        "u": "00000000-0000-0000-0000-000000000001",
        "n": "\\N",
    }


def test_first_param_wins_and_odd_names_are_dropped() -> None:
    fields = [("param_a", "1"), ("param_a", "2"), ("param_b c", "x"), ("param_", "y")]
    assert query_params(fields) == {"a": "1"}


@pytest.mark.parametrize(
    ("raw", "statement", "fmt", "data"),
    [
        (
            b"INSERT INTO t (a, b) FORMAT Native\n\x00\x01;",
            "INSERT INTO t (a, b)",
            "Native",
            b"\x00\x01;",
        ),
        (b"INSERT INTO format FORMAT CSV  \r\n1,2", "INSERT INTO format", "CSV", b"1,2"),
        (
            b"INSERT INTO db.values (format) FORMAT CSV 1",
            "INSERT INTO db.values (format)",
            "CSV",
            b"1",
        ),
        (
            b"insert into t settings insert_deduplication_token='a;FORMAT x' format JSONEachRow {}",
            "insert into t settings insert_deduplication_token='a;FORMAT x'",
            "JSONEachRow",
            b"{}",
        ),
        (b"/* c */ INSERT INTO t FORMAT TSV\n\n", "/* c */ INSERT INTO t", "TSV", b"\n"),
    ],
)
def test_insert_data_is_cut_after_the_format_name(
    raw: bytes, statement: str, fmt: str, data: bytes
) -> None:
    cut = split_insert(raw)
    assert cut is not None
    assert (cut.statement, cut.fmt, cut.data) == (statement, fmt, data)


def test_an_inserts_own_settings_clause_is_kept_apart_from_its_head() -> None:
    """The server puts FROM INFILE between the two, where ClickHouse's grammar wants it."""
    raw = b"INSERT INTO t (a) SETTINGS async_insert = 0, x = 'FORMAT;' FORMAT Native\n\x00"
    cut = split_insert(raw)
    assert cut is not None
    assert (cut.head, cut.settings) == (
        "INSERT INTO t (a)",
        "SETTINGS async_insert = 0, x = 'FORMAT;'",
    )
    assert cut.statement == f"{cut.head} {cut.settings}"
    statement = prepare_statement(http_query(body=raw))
    assert (statement.sql, statement.insert_settings) == (cut.head, cut.settings)
    named = split_insert(b"INSERT INTO settings (settings) FORMAT TSV\n1")
    assert named is not None
    assert (named.head, named.settings) == ("INSERT INTO settings (settings)", "")


@pytest.mark.parametrize(
    "raw", [b"INSERT INTO t VALUES (1)", b"INSERT INTO t SELECT 1", b"SELECT 1 FORMAT Native"]
)
def test_statements_without_format_data_are_not_cut(raw: bytes) -> None:
    assert split_insert(raw) is None


def test_semicolon_right_after_the_format_name_is_a_syntax_error() -> None:
    with pytest.raises(ClickHouseError) as error:
        split_insert(b"INSERT INTO t FORMAT Native;data")
    assert error.value.code == 62


@pytest.mark.parametrize(
    ("raw", "keyword", "fmt"),
    [
        (b"SELECT 1", "SELECT", None),
        (b"SELECT 1 AS format FORMAT JSON", "SELECT", "JSON"),
        (b"SELECT 1 FORMAT JSON SETTINGS max_threads = 1;", "SELECT", "JSON"),
        (b"(SELECT 1 FORMAT JSON)", "SELECT", None),
        (b"SELECT format('{}', 'x;y') FORMAT Native", "SELECT", "Native"),
        (b"-- note\n# note\n/* a /* nested */ b */ show tables", "SHOW", None),
        (b"SELECT $$a; FORMAT b$$", "SELECT", None),
    ],
)
def test_query_shape(raw: bytes, keyword: str, fmt: str | None) -> None:
    shape = analyze_query(raw)
    assert (shape.keyword, shape.output_format, shape.empty) == (keyword, fmt, False)


def test_multi_statements_are_refused() -> None:
    with pytest.raises(ClickHouseError) as error:
        analyze_query(b"SELECT 1; DROP TABLE t")
    assert error.value.code == 62
    assert "Multi-statements are not allowed" in error.value.text


def test_query_param_comes_first_then_a_newline_then_the_body() -> None:
    statement = prepare_statement(http_query("INSERT INTO t FORMAT TSV", b"1\tx\n"))
    assert (statement.sql, statement.insert_format, statement.insert_data) == (
        "INSERT INTO t",
        "TSV",
        b"1\tx\n",
    )
    joined = prepare_statement(http_query("SELECT 1", b"+ 1"))
    assert joined.sql == "SELECT 1\n+ 1"
    assert joined.result_format == "TabSeparated"


def test_statements_without_a_result_set_name_no_format() -> None:
    assert prepare_statement(http_query(body=b"CREATE DATABASE x")).result_format is None
    assert prepare_statement(http_query(body=b"SET max_threads = 1")).keyword == "SET"
    shown = prepare_statement(http_query(body=b"SHOW TABLES FORMAT JSON"))
    assert shown.result_format == "JSON"


def test_an_empty_query_is_a_syntax_error() -> None:
    with pytest.raises(ClickHouseError) as error:
        prepare_statement(http_query(body=b"  -- nothing\n ;"))
    assert error.value.code == 62


def test_lz4_bodies_are_every_concatenated_frame() -> None:
    body = lz4.frame.compress(b"INSERT INTO t FORMAT TSV\n") + lz4.frame.compress(b"1\n2\n")
    assert decode_body(body, "lz4") == b"INSERT INTO t FORMAT TSV\n1\n2\n"


def test_other_encodings_decode() -> None:
    assert decode_body(gzip.compress(b"a") + gzip.compress(b"b"), "gzip") == b"ab"
    assert decode_body(zlib.compress(b"abc"), "deflate") == b"abc"
    assert decode_body(b"plain", None) == b"plain"


@pytest.mark.parametrize(
    ("body", "encoding", "code"),
    [(b"not lz4", "lz4", 618), (b"not gzip", "gzip", 354), (b"x", "snappy", 48)],
)
def test_undecodable_bodies_raise_clickhouse_errors(body: bytes, encoding: str, code: int) -> None:
    with pytest.raises(ClickHouseError) as error:
        decode_body(body, encoding)
    assert error.value.code == code


def test_chdb_messages_keep_their_code_and_name() -> None:
    error = ClickHouseError.from_chdb(
        "Streaming insert finish failed: Code: 60. DB::Exception: Table db.t does not exist. "
        "(UNKNOWN_TABLE) (version 26.9.2.1)"
    )
    assert (error.code, error.name, error.http_status) == (60, "UNKNOWN_TABLE", 404)
    assert error.text.startswith("Code: 60. DB::Exception: Table db.t")
    assert error.response_text("1.0").endswith("(UNKNOWN_TABLE) (version 26.9.2.1)\n")
    bare = ClickHouseError.from_chdb("Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)")
    assert (bare.code, bare.http_status) == (62, 400)
    assert bare.response_text("9.9").endswith("(SYNTAX_ERROR) (version 9.9)\n")
    odd = ClickHouseError.from_chdb("something broke")
    assert (odd.code, odd.name, odd.http_status) == (1001, "STD_EXCEPTION", 500)


def test_literals_are_escaped() -> None:
    assert quote_string("a'b\\c") == "'a\\'b\\\\c'"
    assert quote_identifier("we`ird\\db") == "`we\\`ird\\\\db`"
