"""The columns the workers read from every row, at the positions found once per spec."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from workers.tables import TABLES


def test_identity_offset_and_time_are_read_where_the_columns_are() -> None:
    for spec in TABLES.values():
        row: list[Any] = [f"value of {name}" for name in spec.columns]
        identity: tuple[object, ...] = spec.identity(row)
        assert identity == (
            "value of project_id",
            "value of prompt_id",
            "value of dedup_key",
        )
        offset: object = spec.offset(row)
        assert offset == "value of kafka_offset"
        assert spec.received_at(row) == "value of received_at"


def test_a_spec_with_its_columns_moved_reads_them_where_they_went() -> None:
    spec = next(iter(TABLES.values()))
    moved = dataclasses.replace(spec, columns=tuple(reversed(spec.columns)))
    row: list[Any] = [f"value of {name}" for name in moved.columns]
    identity: tuple[object, ...] = moved.identity(row)
    assert identity == (
        "value of project_id",
        "value of prompt_id",
        "value of dedup_key",
    )


def test_the_month_is_the_utc_month() -> None:
    spec = next(iter(TABLES.values()))
    at = spec.columns.index("received_at")
    row: list[Any] = [None] * len(spec.columns)
    cases = {
        datetime(2026, 1, 31, 23, 30): 202601,  # naive: UTC
        datetime(2026, 1, 31, 23, 30, tzinfo=UTC): 202601,
        datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))): 202601,
        datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))): 202602,
    }
    for moment, month in cases.items():
        row[at] = moment
        assert spec.month(row) == month
