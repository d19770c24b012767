"""Reading ClickHouse from tests, waiting for what the workers write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from promptline.clickhouse import connect
from promptline.settings import Settings


async def wait_for_rows(
    settings: Settings,
    sql: str,
    expected: int,
    within: float = 60.0,
    parameters: dict[str, Any] | None = None,
) -> Sequence[Sequence[Any]]:
    """Run ``sql`` until it returns ``expected`` rows; fail with what it saw last."""
    client = await connect(settings)
    try:
        deadline = time.monotonic() + within
        rows: Sequence[Sequence[Any]] = []
        while time.monotonic() < deadline:
            rows = (await client.query(sql, parameters=parameters)).result_rows
            if len(rows) >= expected:
                return rows
            await asyncio.sleep(0.2)
        raise AssertionError(f"expected {expected} rows after {within}s, got {len(rows)}: {rows}")
    finally:
        await client.close()
