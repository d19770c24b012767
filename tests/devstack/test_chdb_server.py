"""The chDB dev server against the real clickhouse-connect clients, over real HTTP.

The server runs as a subprocess on a free loopback port with a temporary data
directory, as local mode runs it. Clients use their defaults (compression on, lz4).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.external import ExternalData
from clickhouse_connect.driver.summary import QuerySummary

from promptline.devstack.services import (
    LOOPBACK,
    ServiceStartError,
    clickhouse_command,
    free_port,
    http_ok,
    spawn,
    wait_until,
)

pytestmark = pytest.mark.clickhouse

STARTUP_TIMEOUT = 60.0

COLUMNS = ["id", "name", "score", "ts", "uid", "kind", "note", "tags"]
TABLE_DDL = """
CREATE TABLE {table} (
    id UInt64,
    name String,
    score Float64,
    ts DateTime64(3, 'UTC'),
    uid UUID,
    kind LowCardinality(String),
    note Nullable(String),
    tags Array(String)
) ENGINE = MergeTree ORDER BY id
"""
AWKWARD = ["plain", "it's", 'say "hi"', "back\\slash", "tab\there", "new\nline", "ünïcødé ✓", ""]


class ServerProcess:
    """``python -m promptline.devstack.chdb_server`` on a data directory, started and stopped."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        self.process = spawn(clickhouse_command(self.port, self.data_dir), self.log_path)
        process = self.process
        try:
            wait_until(
                "chDB server",
                lambda: (
                    process.poll() is not None or http_ok(f"http://{LOOPBACK}:{self.port}/ping")
                ),
                STARTUP_TIMEOUT,
                self.log_path,
            )
        except ServiceStartError:
            self.stop()
            raise
        if process.poll() is not None:
            raise RuntimeError(f"chDB server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        """SIGTERM by pid and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def http_post(
    port: int, body: bytes, query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw POST; returns status, headers and body, also for error statuses."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/?{query}", data=body, headers=headers or {}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), dict(response.headers), bytes(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), dict(error.headers), bytes(error.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("chdb_server")
    process = ServerProcess(workdir / "data", workdir / "server.log")
    process.start()
    yield process
    assert process.stop() == 0, process.log_path.read_text()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    client = clickhouse_connect.get_client(host=LOOPBACK, port=server.port)
    yield client
    client.close()


@pytest.fixture
async def async_client(server: ServerProcess) -> AsyncIterator[AsyncClient]:
    client = await clickhouse_connect.get_async_client(host=LOOPBACK, port=server.port)
    yield client
    await client.close()


@pytest.fixture
def database(client: Client) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client.command(f"CREATE DATABASE {name}")
    yield name
    client.command(f"DROP DATABASE {name}")


def sample_rows(count: int, seed: int) -> list[list[Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [
        [
            i,
            f"{rng.choice(AWKWARD)}-{i}",
            rng.uniform(-1e6, 1e6),
            start + timedelta(milliseconds=rng.randrange(10**9)),
            uuid.UUID(int=rng.getrandbits(128)),
            rng.choice(["alpha", "beta", "gamma"]),
            None if i % 3 == 0 else rng.choice(AWKWARD),
            [rng.choice(AWKWARD) for _ in range(i % 4)],
        ]
        for i in range(count)
    ]


def as_utc(value: datetime) -> datetime:
    """clickhouse-connect returns UTC columns as naive UTC datetimes by default."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def assert_rows_equal(got: Sequence[Sequence[Any]], expected: list[list[Any]]) -> None:
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        assert row[0] == want[0]
        assert row[1] == want[1]
        assert row[2] == want[2]
        assert as_utc(row[3]) == want[3]
        assert row[4] == want[4]
        assert row[5] == want[5]
        assert row[6] == want[6]
        assert list(row[7]) == want[7]


def test_ping_and_root_answer_ok(server: ServerProcess) -> None:
    assert http_get(server.port, "/ping") == "Ok.\n"
    assert http_get(server.port, "/") == "Ok.\n"


def test_client_startup_sees_a_utc_server(client: Client) -> None:
    version = client.command("SELECT version()")
    assert isinstance(version, str)
    assert client.server_version == version
    assert client.command("SELECT timezone()") == "UTC"


def test_command_runs_ddl(client: Client, database: str) -> None:
    created = client.command(f"CREATE TABLE {database}.t (a UInt8) ENGINE = MergeTree ORDER BY a")
    assert isinstance(created, QuerySummary)
    assert client.command(f"EXISTS TABLE {database}.t") == 1
    client.command(f"ALTER TABLE {database}.t ADD COLUMN b String")
    assert client.command(f"SELECT count() FROM system.columns WHERE database = '{database}'") == 2
    client.command(f"DROP TABLE {database}.t")
    assert client.command(f"EXISTS TABLE {database}.t") == 0


def test_sync_insert_reads_back_field_by_field(client: Client, database: str) -> None:
    table = f"{database}.events"
    client.command(TABLE_DDL.format(table=table))
    rows = sample_rows(5000, seed=1)
    summary = client.insert(table, rows, column_names=COLUMNS)
    assert summary.written_rows == 5000
    result = client.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id")
    assert result.column_names == tuple(COLUMNS)
    assert_rows_equal(result.result_rows, rows)


async def test_async_insert_reads_back_field_by_field(
    async_client: AsyncClient, client: Client, database: str
) -> None:
    table = f"{database}.events"
    await async_client.command(TABLE_DDL.format(table=table))
    rows = sample_rows(3000, seed=2)
    await async_client.insert(table, rows[:1500], column_names=COLUMNS)
    await async_client.insert(table, rows[1500:], column_names=COLUMNS)
    result = await async_client.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id")
    assert_rows_equal(result.result_rows, rows)


PARAMETERS: dict[str, Any] = {
    "s": "it's a \\ backslash, a 'quote', a \t tab and a \n newline ✓",
    "i": 2**63 + 5,
    "n": -42,
    "f": 1.25e-3,
    "d": datetime(2026, 5, 6, 7, 8, 9),
    "u": uuid.UUID("6f1c8a6e-1c0f-4b47-9a55-8d2f3d2c9b11"),
    "a": ["x'y", "z\\w", 'q"q', ""],
}
PARAMETER_SQL = (
    "SELECT {s:String}, {i:UInt64}, {n:Int64}, {f:Float64}, {d:DateTime}, {u:UUID}, "
    "{a:Array(String)}, toTypeName({d:DateTime})"
)
PARAMETER_ROW = (
    PARAMETERS["s"],
    PARAMETERS["i"],
    PARAMETERS["n"],
    PARAMETERS["f"],
    PARAMETERS["d"],
    PARAMETERS["u"],
    PARAMETERS["a"],
    "DateTime",
)


def test_server_side_parameters_sync(client: Client) -> None:
    result = client.query(PARAMETER_SQL, parameters=PARAMETERS)
    assert result.result_rows == [PARAMETER_ROW]


async def test_server_side_parameters_async(async_client: AsyncClient) -> None:
    result = await async_client.query(PARAMETER_SQL, parameters=PARAMETERS)
    assert result.result_rows == [PARAMETER_ROW]


def test_parameters_filter_a_table_and_go_by_form_when_long(client: Client, database: str) -> None:
    table = f"{database}.events"
    client.command(TABLE_DDL.format(table=table))
    rows = sample_rows(2000, seed=3)
    client.insert(table, rows, column_names=COLUMNS)
    wanted = [row[4] for row in rows[::7]]  # ~290 UUIDs: past the URL budget, sent as a form
    result = client.query(
        f"SELECT id FROM {table} WHERE uid IN {{ids:Array(UUID)}} AND name != {{skip:String}} "
        "ORDER BY id",
        parameters={"ids": wanted, "skip": rows[7][1]},
    )
    assert [row[0] for row in result.result_rows] == [r[0] for r in rows[::7] if r[0] != 7]


def test_external_data_is_a_table_of_the_query(client: Client, database: str) -> None:
    table = f"{database}.events"
    client.command(TABLE_DDL.format(table=table))
    rows = sample_rows(500, seed=5)
    client.insert(table, rows, column_names=COLUMNS)
    wanted = rows[::9]
    escapes = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})
    data = "".join(f"{row[4]}\t{row[1].translate(escapes)}\n" for row in wanted).encode()
    external = ExternalData(file_name="wanted", data=data, structure="uid UUID, name String")
    external.add_file(file_name="skip", data=b"9\n", fmt="CSV", types="UInt64")
    result = client.query(
        f"SELECT id FROM {table} WHERE (uid, name) IN (SELECT uid, name FROM wanted)"
        " AND id NOT IN (SELECT _1 FROM skip) AND id < {below:UInt64} ORDER BY id",
        parameters={"below": 400},
        external_data=external,
    )
    assert [row[0] for row in result.result_rows] == [
        row[0] for row in wanted if row[0] != 9 and row[0] < 400
    ]
    # The tables last as long as their query.
    with pytest.raises(DatabaseError):
        client.query("SELECT count() FROM wanted")


def test_dedup_token_applies_an_insert_once(client: Client, database: str) -> None:
    table = f"{database}.dedup"
    client.command(
        f"CREATE TABLE {table} (id UInt64, v String) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    first = [[i, f"first-{i}"] for i in range(100)]
    second = [[i, f"second-{i}"] for i in range(100, 150)]
    for _ in range(2):
        client.insert(
            table, first, column_names=["id", "v"], settings={"insert_deduplication_token": "t1"}
        )
    assert client.command(f"SELECT count() FROM {table}") == 100
    # Different data under the same token is a retry of the same insert, so it is dropped too.
    client.insert(
        table, second, column_names=["id", "v"], settings={"insert_deduplication_token": "t1"}
    )
    assert client.command(f"SELECT count() FROM {table}") == 100
    # A later insert without a token must not inherit the previous request's token.
    client.insert(table, second, column_names=["id", "v"])
    assert client.command(f"SELECT count() FROM {table}") == 150
    client.insert(
        table, first, column_names=["id", "v"], settings={"insert_deduplication_token": "t2"}
    )
    assert client.command(f"SELECT count() FROM {table}") == 250


def test_an_insert_the_engine_refuses_raises_and_stores_nothing(
    client: Client, database: str
) -> None:
    """A CHECK constraint fails inside the engine, after the client's data is all read."""
    table = f"{database}.checked"
    client.command(
        f"CREATE TABLE {table} (id UInt64, score Float64, "
        "CONSTRAINT score_not_negative CHECK score >= 0) ENGINE = MergeTree ORDER BY id"
    )
    good = [[i, float(i)] for i in range(5000)]
    with pytest.raises(DatabaseError) as refused:
        client.insert(table, [*good, [5000, -1.0]], column_names=["id", "score"])
    assert (refused.value.code, refused.value.name) == (469, "VIOLATED_CONSTRAINT")
    assert "Constraint `score_not_negative`" in str(refused.value)
    assert client.command(f"SELECT count() FROM {table}") == 0
    summary = client.insert(table, good, column_names=["id", "score"])
    assert summary.written_rows == 5000
    assert client.command(f"SELECT count(), sum(id) FROM {table}") == ["5000", "12497500"]


@pytest.mark.parametrize(
    ("ddl", "stored_in"),
    [
        (
            [
                "CREATE TABLE {db}.src (x UInt32) ENGINE = MergeTree ORDER BY x",
                "CREATE TABLE {db}.dst (x UInt32) ENGINE = MergeTree ORDER BY x",
                "CREATE MATERIALIZED VIEW {db}.mv TO {db}.dst"
                " AS SELECT x FROM {db}.src WHERE throwIf(x = 13) = 0",
            ],
            "dst",
        ),
        (
            [
                "CREATE TABLE {db}.src (x UInt32, y UInt8 DEFAULT throwIf(x = 13)) "
                "ENGINE = MergeTree ORDER BY x"
            ],
            "src",
        ),
    ],
    ids=["materialized-view", "default-expression"],
)
def test_an_insert_whose_view_or_default_throws_raises(
    client: Client, database: str, ddl: list[str], stored_in: str
) -> None:
    for statement in ddl:
        client.command(statement.format(db=database))
    with pytest.raises(DatabaseError) as refused:
        client.insert(f"{database}.src", [[1], [13], [2]], column_names=["x"])
    assert (refused.value.code, refused.value.name) == (395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO")
    assert client.command(f"SELECT count() FROM {database}.{stored_in}") == 0
    client.insert(f"{database}.src", [[1], [2]], column_names=["x"])
    assert client.command(f"SELECT sum(x) FROM {database}.{stored_in}") == 3


def test_a_refused_insert_answers_the_real_servers_error(
    server: ServerProcess, client: Client, database: str
) -> None:
    table = f"{database}.small"
    client.command(
        f"CREATE TABLE {table} (a UInt8, CONSTRAINT below_ten CHECK a < 10) "
        "ENGINE = MergeTree ORDER BY a"
    )
    query = urllib.parse.urlencode({"query": f"INSERT INTO {table} FORMAT TabSeparated"})
    status, headers, body = http_post(server.port, b"1\n2\n30\n", query)
    assert status == 500
    assert headers["X-ClickHouse-Exception-Code"] == "469"
    assert "X-ClickHouse-Summary" not in headers  # no rows claimed
    text = body.decode()
    assert text.startswith("Code: 469. DB::Exception: Constraint `below_ten`")
    assert "(VIOLATED_CONSTRAINT) (version " in text
    assert client.command(f"SELECT count() FROM {table}") == 0


def test_an_inserts_own_settings_clause_applies(
    server: ServerProcess, client: Client, database: str
) -> None:
    table = f"{database}.tokens"
    client.command(
        f"CREATE TABLE {table} (a UInt32) ENGINE = MergeTree ORDER BY a "
        "SETTINGS non_replicated_deduplication_window = 10"
    )
    sql = f"INSERT INTO {table} SETTINGS insert_deduplication_token = 'once' FORMAT TSV"
    for body in (b"1\n2\n", b"3\n"):  # the second is a retry under the same token: dropped
        status, _, _ = http_post(server.port, body, urllib.parse.urlencode({"query": sql}))
        assert status == 200
    assert client.command(f"SELECT sum(a) FROM {table}") == 3


def test_settings_apply_to_their_request_only(client: Client) -> None:
    sql = "SELECT getSetting('max_execution_time'), getSetting('max_block_size')"
    with_settings = client.query(sql, settings={"max_execution_time": 7, "max_block_size": 1234})
    assert [float(v) for v in with_settings.result_rows[0]] == [7.0, 1234.0]
    default = client.query(sql).result_rows[0]
    assert float(default[0]) == 0.0
    assert float(default[1]) != 1234.0


async def test_concurrent_requests_keep_their_own_settings(server: ServerProcess) -> None:
    client = await clickhouse_connect.get_async_client(
        host=LOOPBACK, port=server.port, autogenerate_session_id=False
    )
    try:

        async def block_size(size: int) -> int:
            result = await client.query(
                "SELECT getSetting('max_block_size')", settings={"max_block_size": size}
            )
            return int(result.result_rows[0][0])

        sizes = [1000 + i for i in range(24)]
        assert await asyncio.gather(*(block_size(size) for size in sizes)) == sizes
    finally:
        await client.close()


def test_bad_queries_raise_database_errors_with_codes(client: Client) -> None:
    with pytest.raises(DatabaseError) as unknown_table:
        client.query("SELECT * FROM default.no_such_table")
    assert unknown_table.value.code == 60
    assert unknown_table.value.name == "UNKNOWN_TABLE"
    with pytest.raises(DatabaseError) as syntax:
        client.query("SELEC 1")
    assert syntax.value.code == 62
    with pytest.raises(DatabaseError) as setting:
        client.query("SELECT 1", settings={"no_such_setting_at_all": 1})
    assert setting.value.code == 115
    with pytest.raises(DatabaseError) as multi:
        client.command("SELECT 1; SELECT 2")
    assert multi.value.code == 62


async def test_async_errors_and_unknown_database(
    async_client: AsyncClient, server: ServerProcess
) -> None:
    with pytest.raises(DatabaseError) as unknown_table:
        await async_client.command("DROP TABLE default.no_such_table")
    assert unknown_table.value.code == 60
    with pytest.raises(DatabaseError) as unknown_database:
        await clickhouse_connect.get_async_client(
            host=LOOPBACK, port=server.port, database="no_such_database"
        )
    assert unknown_database.value.code == 81


def test_error_response_is_shaped_like_the_real_servers(server: ServerProcess) -> None:
    status, headers, body = http_post(server.port, b"SELECT * FROM default.no_such_table")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    text = body.decode()
    assert text.startswith("Code: 60. DB::Exception: ")
    assert "(UNKNOWN_TABLE) (version " in text


def test_response_headers(server: ServerProcess) -> None:
    status, headers, body = http_post(
        server.port,
        b"SELECT number FROM numbers(5)",
        query="default_format=JSONEachRow&query_id=my-query-1",
    )
    assert status == 200
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"number": n} for n in range(5)
    ]
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Query-Id"] == "my-query-1"
    assert headers["X-ClickHouse-Timezone"] == "UTC"
    assert headers["X-ClickHouse-Server-Display-Name"]
    summary = json.loads(headers["X-ClickHouse-Summary"])
    assert summary["result_rows"] == "5"
    assert summary["read_rows"] == "5"
    assert set(summary) >= {"written_rows", "written_bytes", "read_bytes", "elapsed_ns"}


def test_query_param_then_body_and_concatenated_lz4_frames(
    server: ServerProcess, client: Client, database: str
) -> None:
    table = f"{database}.raw"
    client.command(f"CREATE TABLE {table} (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
    frames = lz4.frame.compress(b"1\tone\n2\ttwo\n") + lz4.frame.compress(b"3\tthree\n")
    query = urllib.parse.urlencode({"query": f"INSERT INTO {table} FORMAT TabSeparated"})
    status, headers, _ = http_post(server.port, frames, query, {"Content-Encoding": "lz4"})
    assert status == 200
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "3"
    body = gzip.compress(f"INSERT INTO {table} VALUES (4, 'four')".encode())
    status, _, _ = http_post(server.port, body, headers={"Content-Encoding": "gzip"})
    assert status == 200
    rows = client.query(f"SELECT a, s FROM {table} ORDER BY a").result_rows
    assert rows == [(1, "one"), (2, "two"), (3, "three"), (4, "four")]


def test_database_parameter_is_the_default_database(server: ServerProcess, client: Client) -> None:
    database = f"test_{uuid.uuid4().hex[:12]}"
    client.command(f"CREATE DATABASE {database}")
    scoped = clickhouse_connect.get_client(host=LOOPBACK, port=server.port, database=database)
    try:
        scoped.command("CREATE TABLE local_t (a UInt8) ENGINE = MergeTree ORDER BY a")
        scoped.insert("local_t", [[1], [2]], column_names=["a"])
        assert scoped.command("SELECT currentDatabase()") == database
        assert client.command("SELECT currentDatabase()") == "default"
        assert scoped.command("SELECT sum(a) FROM local_t") == 3
        assert client.command(f"SELECT sum(a) FROM {database}.local_t") == 3
        scoped.command(f"DROP DATABASE {database}")
        with pytest.raises(DatabaseError) as gone:
            scoped.command("SELECT 1")
        assert gone.value.code == 81
    finally:
        scoped.close()


def test_data_persists_across_restart_and_the_directory_is_exclusive(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    process.start()
    try:
        client = clickhouse_connect.get_client(host=LOOPBACK, port=process.port)
        try:
            client.command("CREATE DATABASE kept")
            client.command("CREATE TABLE kept.t (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
            client.insert("kept.t", [[i, str(i)] for i in range(1000)], column_names=["a", "s"])
        finally:
            client.close()
        rival = subprocess.run(
            clickhouse_command(free_port(), process.data_dir),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert rival.returncode == 1
    finally:
        assert process.stop() == 0
    process.start()
    try:
        client = clickhouse_connect.get_client(host=LOOPBACK, port=process.port)
        try:
            assert client.command("SELECT count(), sum(a) FROM kept.t") == ["1000", "499500"]
        finally:
            client.close()
    finally:
        assert process.stop() == 0
