"""Which of our views counts a raw table's rows, and how to tell whether it counted some.

ClickHouse stores an insert into a table and its views one after another and stops at the
first view that fails, after the raw part is stored. So when a view refuses an insert, the
hourly aggregate fed from the same table may have counted it already (an analyst's view,
created later, is processed after ours) or not (ours refused it, or came later). The block
writer asks here which: the aggregate's rows for the hours and versions of the refused rows
are compared with the raw table's, which hold each event once (``workers/writer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.sink import ClickHouseSink


@dataclass(frozen=True, slots=True)
class HourlyAggregate:
    """An hourly table fed by a view on a raw table: its key, over both, and its count."""

    hourly: str
    raw_key: str
    hourly_key: str
    counted: str

    async def counted_rows(
        self, sink: ClickHouseSink, raw: str, where: str, parameters: dict[str, Any]
    ) -> bool:
        """Whether the aggregate counted the raw rows ``where`` selects: it then holds as
        many rows for their hours and versions as the raw table, those rows included."""
        keys = f"SELECT DISTINCT {self.raw_key} FROM {raw} WHERE {where}"
        rows = await sink.rows(
            f"SELECT (SELECT count() FROM {raw} WHERE ({self.raw_key}) IN ({keys})),"
            f" (SELECT {self.counted} FROM {self.hourly} WHERE ({self.hourly_key}) IN ({keys})),"
            f" (SELECT count() FROM {raw} WHERE {where})",
            parameters,
        )
        raw_rows, counted, refused = (int(value or 0) for value in rows[0])
        return counted - (raw_rows - refused) >= refused > 0


HOURLY: dict[str, HourlyAggregate] = {
    "analytics_events": HourlyAggregate(
        hourly="analytics_hourly",
        raw_key="project_id, prompt_id, version_hash, toStartOfHour(received_at)",
        hourly_key="project_id, prompt_id, version_hash, hour",
        counted="sum(events)",
    ),
    "signal_events": HourlyAggregate(
        hourly="signals_hourly",
        raw_key="project_id, prompt_id, version, version_hash, toStartOfHour(received_at)",
        hourly_key="project_id, prompt_id, version, version_hash, hour",
        counted="sum(positive) + sum(negative)",
    ),
    "usage_links": HourlyAggregate(
        hourly="usage_hourly",
        raw_key="project_id, prompt_id, version, toStartOfHour(received_at)",
        hourly_key="project_id, prompt_id, version, hour",
        counted="sum(links)",
    ),
    "exposure_events": HourlyAggregate(
        hourly="exposures_hourly",
        raw_key="project_id, prompt_id, version, deployment_id, by_split,"
        " toStartOfHour(received_at)",
        hourly_key="project_id, prompt_id, version, deployment_id, by_split, hour",
        counted="sum(exposures)",
    ),
}
"""The hourly aggregate of each raw table (sql/migrations/0005_hourly_aggregates.sql,
0009_exposures.sql)."""
