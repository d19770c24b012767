"""The README's analyst queries run as written, and count what compare counts."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promptline.settings import Settings
from schemas.records import RecordBase
from sql.runner import migrate
from tests.compare.support import store
from tests.workers.helpers import Tenant, analytics, exposure, query, signal, usage

pytestmark = [pytest.mark.clickhouse]

README = Path(__file__).resolve().parents[2] / "README.md"
H1, H2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def analyst_queries() -> list[str]:
    """Every statement of the README's "Analyst queries" section."""
    text = README.read_text()
    section = text[text.index("## Analyst queries") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    return [part.strip() for block in blocks for part in block.split(";") if part.strip()]


async def test_the_analyst_queries_run_and_attribute_signals_as_compare_does(
    settings: Settings,
) -> None:
    await migrate(settings)
    tenant, prompt, trace = Tenant(), uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC) - timedelta(hours=1)
    records: list[RecordBase] = [
        analytics(tenant, prompt, H1, latency=100, cost=0.5, score=1, at=at),
        analytics(tenant, prompt, H2, latency=300, at=at),
        signal(tenant, prompt, "positive", metadata={"version": "v1"}, at=at),
        signal(tenant, prompt, "positive", metadata={"version_hash": H2}, at=at),
        signal(tenant, prompt, "negative", metadata={"version_hash": H2}, at=at),
        signal(tenant, prompt, "negative", metadata={"version_hash": H2}, at=at),
        signal(tenant, prompt, "positive", metadata={"trace_id": str(trace)}, at=at),
        signal(tenant, prompt, "negative", at=at),  # names nothing: no version's
        usage(tenant, prompt, 1, H1, trace, at=at),
        usage(tenant, prompt, 2, H2, trace, at=at),
        *(exposure(tenant, prompt, 1, unit, version_hash=H1, at=at) for unit in ("a", "b", "a")),
        exposure(tenant, prompt, 2, "a", version_hash=H2, at=at),
        exposure(tenant, prompt, 2, "c", version_hash=H2, by_split=False, rule="beta", at=at),
    ]
    await store(settings, records)
    statements = analyst_queries()
    assert len(statements) == 8
    results: dict[str, list[tuple[Any, ...]]] = {}
    for sql in statements:
        sql = sql.replace("<prompt uuid>", str(prompt)).replace("'sha256:...'", f"'{H1}'")
        results[sql] = await query(settings, sql)
    by_marker = {
        marker: next(rows for sql, rows in results.items() if marker in sql)
        for marker in (
            "named_version",
            "usage_hourly",
            "INNER JOIN",
            "quantilesDD",
            "LIMIT 20",
            "exposures_hourly",
            "split_units",
        )
    }
    assert by_marker["exposures_hourly"] == [(1, 3, 2), (2, 2, 2)]
    assert by_marker["split_units"] == [(1, 3, 2), (2, 1, 1)]
    assert by_marker["named_version"] == [(H2, 1, 2, 1 / 3), ("v1", 1, 0, 1.0)]
    assert sorted(by_marker["INNER JOIN"]) == [(1, 1, 0), (2, 1, 0)]  # one trace, both versions
    assert by_marker["usage_hourly"] == [(1, 1, 1), (2, 1, 1)]
    assert sorted((row[0], row[2]) for row in by_marker["quantilesDD"]) == [(H1, 1), (H2, 1)]
