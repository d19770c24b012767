"""The worker's own Native encoding against the driver's bytes and the real engine.

``workers.native`` replaces clickhouse-connect's encoding of the raw tables' inserts, so for
any values of those types it must send exactly the driver's bytes, refuse what the driver
refuses with the driver's ``DataError``, and the engine must read back what was meant (UUIDs
in ClickHouse's byte order above all).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.exceptions import DataError
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptline.clickhouse import connect
from promptline.settings import Settings
from workers.native import NativeBlock, encoder
from workers.sink import ClickHouseSink, Refused
from workers.tables import TABLES

ENUM = "Enum8('negative' = -1, 'positive' = 1)"
COLUMNS: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "u": ("UUID", st.uuids()),
    "nu": ("Nullable(UUID)", st.one_of(st.none(), st.uuids())),
    "s": ("String", st.one_of(st.text(), st.text(min_size=128, max_size=300))),
    "lc": ("LowCardinality(String)", st.sampled_from(["", "sha256:1", "é" * 70])),
    "f": ("Float64", st.floats(allow_nan=False)),
    "nf": ("Nullable(Float64)", st.one_of(st.none(), st.floats(allow_nan=False))),
    "u32": ("UInt32", st.integers(0, 2**32 - 1)),
    "u64": ("UInt64", st.integers(0, 2**64 - 1)),
    "b": ("Bool", st.booleans()),
    "t": (
        "DateTime64(3, 'UTC')",
        st.datetimes(
            min_value=datetime(1900, 1, 2), max_value=datetime(2299, 12, 30), timezones=st.just(UTC)
        ),
    ),
    "e": (ENUM, st.sampled_from(["negative", "positive"])),
}
NAMES = list(COLUMNS)
TYPES = [kind for kind, _values in COLUMNS.values()]


def _drivers_block(names: Sequence[str], types: Sequence[str], columns: list[list[Any]]) -> bytes:
    """The Native block clickhouse-connect sends for ``columns``, without the INSERT line."""
    driver_types = [get_from_name(kind) for kind in types]
    context = InsertContext("t", names, driver_types, columns, column_oriented=True)
    sent = b"".join(NativeTransform.build_insert(context))
    return sent[sent.index(b"FORMAT Native\n") + len(b"FORMAT Native\n") :]


rows = st.lists(st.tuples(*(values for _kind, values in COLUMNS.values())), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_a_block_is_the_drivers_bytes(drawn: list[tuple[Any, ...]]) -> None:
    columns = [list(column) for column in zip(*drawn, strict=True)]
    ours = NativeBlock(NAMES, TYPES).encode(columns)
    assert ours == _drivers_block(NAMES, TYPES, columns)


def test_every_raw_table_type_has_an_encoder() -> None:
    kinds = {
        "event_id": "UUID",
        "received_at": "DateTime64(3, 'UTC')",
        "trace_id": "Nullable(UUID)",
        "value": ENUM,
        "source": "Enum8('resolve' = 1, 'client' = 2)",
    }
    assert all(encoder(kind) is not None for kind in [*TYPES, *kinds.values()])
    assert encoder("Array(String)") is None and encoder("Nullable(String)") is None
    assert NativeBlock(["a"], ["Map(String, String)"]).complete is False


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("UInt32", 2**32 + 5),
        ("UInt32", -1),
        ("UInt64", 2**64),
        ("UInt64", 1.5),
        ("Float64", "1.5"),
        ("String", 7),
        ("UUID", "not a uuid"),
        ("DateTime64(3, 'UTC')", "2026-01-01"),
        (ENUM, "maybe"),
    ],
)
def test_a_value_the_type_cannot_hold_is_the_drivers_data_error(kind: str, value: Any) -> None:
    with pytest.raises(DataError, match="column `c`"):
        NativeBlock(["c"], [kind]).encode([[value]])


def test_columns_of_unequal_length_are_refused() -> None:
    with pytest.raises(DataError):
        NativeBlock(["a", "b"], ["UInt32", "UInt32"]).encode([[1, 2], [1]])


@pytest.mark.clickhouse
async def test_the_engine_reads_back_what_was_encoded(migrated: Settings) -> None:
    client = await connect(migrated)
    structure = ", ".join(f"{name} {kind}" for name, kind in zip(NAMES, TYPES, strict=True))
    first = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    when = datetime(2026, 12, 7, 10, 11, 12, 345000, tzinfo=UTC)
    written = [
        [0, first, None, "", "sha256:1", 1.5, None, 0, 0, True, when, "negative"],
        [1, uuid.UUID(int=1), first, "ü" * 200, "", -0.25, 2.5, 2**32 - 1, 2**64 - 1, False, when,
         "positive"],
    ]  # fmt: skip
    try:
        await client.command(f"CREATE TABLE native_check (n UInt32, {structure}) ENGINE = Memory")
        sink = ClickHouseSink(client)
        await sink.write("native_check", ["n", *NAMES], written, "token-1")
        read = await client.query(
            "SELECT n, toString(u), toString(nu), s, lc, f, nf, u32, u64, b,"
            " toUnixTimestamp64Milli(t), toString(e) FROM native_check ORDER BY n"
        )
        assert [list(row) for row in read.result_rows] == [
            [0, str(first), None, "", "sha256:1", 1.5, None, 0, 0, True, 1796638272345, "negative"],
            [1, "00000000-0000-0000-0000-000000000001", str(first), "ü" * 200, "", -0.25, 2.5,
             2**32 - 1, 2**64 - 1, False, 1796638272345, "positive"],
        ]  # fmt: skip
        with pytest.raises(Refused, match="DataError"):
            await sink.write("native_check", ["n", "u32"], [[2, 2**32]], "token-2")
    finally:
        await client.close()


@pytest.mark.clickhouse
async def test_the_raw_tables_are_encoded_here(migrated: Settings) -> None:
    """Every raw table's insert columns have an encoder, as the engine names their types."""
    client = await connect(migrated)
    try:
        for spec in TABLES.values():
            context = await client.create_insert_context(spec.table, list(spec.insert_columns))
            block = NativeBlock(
                spec.insert_columns, [kind.insert_name for kind in context.column_types]
            )
            assert block.complete, spec.table
    finally:
        await client.close()
