"""The SQL behind compare: per version (and bucket), from the hourly aggregates plus edges.

Each query unions the aggregates' whole hours with the same figures computed from the raw
rows of the window's ragged edges (``compare/window.py``), then merges: sums with ``sum``,
sketch and distinct-count states with their ``-Merge`` functions. Distinct traces come from
sketches (``TRACES``) kept per day and per hour: whole days from the daily ones, the whole
hours beside them from the hourly ones (``links_sql``). Signals that name no
version but a trace are attributed through the usage links at query time: a view cannot
join, since the link may arrive after the signal. Exposures are counted per version with
their exact distinct units (``uniqExact`` states, merged).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from compare.stats import Moments
from compare.window import Bucket, Span, Window

QUANTILES = "quantilesDD(0.01, 0.5, 0.95, 0.99)"
"""The latency sketch of ``analytics_hourly``: 1% relative accuracy, p50, p95, p99."""

TRACES = "uniqCombined64"
"""The distinct-trace sketch of ``usage_traces_hourly`` and ``usage_traces_daily`` (migration
0011): exact up to 4,095 traces, HyperLogLog beyond (about 0.5% off at millions)."""
NO_TRACES = f"arrayReduce('{TRACES}State', CAST([], 'Array(UUID)'))"
"""An empty trace state, for the rows that carry only link counts."""

BucketKey = datetime | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    """What one comparison reads: a prompt of a project, a window, and maybe a bucket size."""

    project_id: uuid.UUID
    prompt_id: uuid.UUID
    window: Window
    bucket: Bucket | None = None


@dataclass(frozen=True, slots=True)
class AnalyticsFigures:
    """Analytics events of one version (and bucket)."""

    events: int
    latency: Moments
    latency_quantiles: tuple[float | None, float | None, float | None]
    cost: Moments
    score: Moments


@dataclass(frozen=True, slots=True)
class Votes:
    """Positive and negative signals."""

    positive: int = 0
    negative: int = 0

    @property
    def total(self) -> int:
        """All signals."""
        return self.positive + self.negative

    def __add__(self, other: Votes) -> Votes:
        return Votes(self.positive + other.positive, self.negative + other.negative)


@dataclass(frozen=True, slots=True)
class Links:
    """Usage links and the distinct traces among them."""

    links: int
    traces: int


@dataclass(frozen=True, slots=True)
class UnitCounts:
    """Exposures and the exact number of distinct units (users) among them."""

    exposures: int
    units: int


@dataclass(frozen=True, slots=True)
class WarehouseFigures:
    """Everything compare reads for one prompt, keyed as the tables key it."""

    analytics: dict[tuple[str, BucketKey], AnalyticsFigures]
    named_votes: dict[tuple[int, str, BucketKey], Votes]
    traced_votes: dict[tuple[int, BucketKey], Votes]
    links: dict[tuple[int, BucketKey], Links]
    exposures: dict[tuple[int, BucketKey], UnitCounts]

    def split(self) -> tuple[WarehouseFigures, WarehouseFigures]:
        """A bucketed read as (the whole window's figures, the buckets' figures)."""
        return self._part(whole=True), self._part(whole=False)

    def _part(self, *, whole: bool) -> WarehouseFigures:
        def kept(table: dict[Any, T]) -> dict[Any, T]:
            return {key: value for key, value in table.items() if (key[-1] is None) == whole}

        return WarehouseFigures(
            kept(self.analytics),
            kept(self.named_votes),
            kept(self.traced_votes),
            kept(self.links),
            kept(self.exposures),
        )


class _Query:
    """SQL text with server-side parameters, built from a scope."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.parameters: dict[str, Any] = {
            "project": scope.project_id,
            "prompt": scope.prompt_id,
        }

    def instant(self, moment: datetime) -> str:
        name = f"t{len(self.parameters)}"
        self.parameters[name] = int(moment.timestamp() * 1000)
        return f"fromUnixTimestamp64Milli({{{name}:Int64}}, 'UTC')"

    def span(self, column: str, span: Span) -> str:
        conditions = []
        if span.start is not None:
            conditions.append(f"{column} >= {self.instant(span.start)}")
        if span.end is not None:
            conditions.append(f"{column} < {self.instant(span.end)}")
        return " AND ".join(conditions) or "1"

    def tenancy(self) -> str:
        return "project_id = {project:UUID} AND prompt_id = {prompt:UUID}"

    def bucket(self, column: str) -> str:
        if self.scope.bucket is Bucket.DAY:
            return f", toStartOfDay({column}) AS bucket"
        if self.scope.bucket is Bucket.HOUR:
            return f", {column} AS bucket"
        return ""

    def group_by(self, keys: str) -> str:
        """``GROUP BY keys``; with a bucket, both per bucket and over the whole window in one
        pass (grouping sets): the whole window's rows come back with a NULL bucket."""
        if self.scope.bucket is None:
            return f" GROUP BY {keys}"
        return (
            f" GROUP BY GROUPING SETS (({keys}, bucket), ({keys})) SETTINGS group_by_use_nulls = 1"
        )

    def union(self, *parts: str | None) -> str:
        # A window always has whole hours, edges, or both (``Window.edges``).
        return "\n    UNION ALL\n    ".join(part for part in parts if part is not None)

    def hourly_part(self, select: str, table: str, where: str = "1") -> str | None:
        hours = self.scope.window.hours()
        return self.spans_part(select, table, "hour", [] if hours is None else [hours], where)

    def spans_part(
        self, select: str, table: str, column: str, spans: Sequence[Span], where: str = "1"
    ) -> str | None:
        """Rows of an aggregate table whose ``column`` falls in any of ``spans``."""
        if not spans:
            return None
        ranges = " OR ".join(f"({self.span(column, span)})" for span in spans)
        return f"SELECT {select} FROM {table} WHERE {self.tenancy()} AND ({where}) AND ({ranges})"

    def day_and_hour_spans(self) -> tuple[Span | None, list[Span]]:
        """The window's whole days (None with hourly buckets, which days cannot cut) and the
        whole hours beside them."""
        window = self.scope.window
        if self.scope.bucket is Bucket.HOUR:
            hours = window.hours()
            return None, [] if hours is None else [hours]
        return window.days(), window.hours_beside_days()

    def raw_part(self, select: str, table: str, group: str, where: str = "1") -> str | None:
        edges = self.scope.window.edges()
        if not edges:
            return None
        ranges = " OR ".join(f"({self.span('received_at', edge)})" for edge in edges)
        return (
            f"SELECT {select} FROM {table}"
            f" WHERE {self.tenancy()} AND ({where}) AND ({ranges}) GROUP BY {group}"
        )


def _bucket_key(value: Any) -> BucketKey:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return None


def _quantile(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def analytics_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Events, latency, cost and score per version hash (and bucket)."""
    query = _Query(scope)
    metrics = ("latency", "cost", "score")
    hourly = query.hourly_part(
        "version_hash, hour AS at, events, "
        + ", ".join(f"{m}_count, {m}_sum, {m}_sum_sq" for m in metrics)
        + ", latency_quantiles",
        "analytics_hourly",
    )
    raw_metrics = {"latency": "latency_ms", "cost": "cost_usd", "score": "score"}
    raw = query.raw_part(
        "version_hash, toStartOfHour(received_at) AS at, count() AS events, "
        + ", ".join(
            f"count({c}) AS {m}_count, sum(ifNull({c}, 0)) AS {m}_sum,"
            f" sum(ifNull({c}, 0) * ifNull({c}, 0)) AS {m}_sum_sq"
            for m, c in raw_metrics.items()
        )
        + f", {QUANTILES.replace('quantilesDD', 'quantilesDDState')}(latency_ms)"
        " AS latency_quantiles",
        "analytics_events",
        "version_hash, at",
    )
    sums = ", ".join(f"sum({m}_count), sum({m}_sum), sum({m}_sum_sq)" for m in metrics)
    sql = (
        f"SELECT version_hash{query.bucket('at')}, sum(events), {sums},"
        f" {QUANTILES.replace('quantilesDD', 'quantilesDDMerge')}(latency_quantiles)"
        f" FROM (\n    {query.union(hourly, raw)}\n)" + query.group_by("version_hash")
    )
    return sql, query.parameters


def named_votes_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Signals whose metadata named a version (by number or content hash)."""
    query = _Query(scope)
    named = "version != 0 OR version_hash != ''"
    hourly = query.hourly_part(
        "version, version_hash, hour AS at, positive, negative", "signals_hourly", named
    )
    raw = query.raw_part(
        "version, version_hash, toStartOfHour(received_at) AS at,"
        " countIf(value = 'positive') AS positive, countIf(value = 'negative') AS negative",
        "signal_events",
        "version, version_hash, at",
        named,
    )
    sql = (
        f"SELECT version, version_hash{query.bucket('at')}, sum(positive), sum(negative)"
        f" FROM (\n    {query.union(hourly, raw)}\n)" + query.group_by("version, version_hash")
    )
    return sql, query.parameters


def traced_votes_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Signals that named only a trace: the version a usage link ties it to (0 if none).

    With a bucket, only per bucket: the whole window is their sum (``read_figures``), which
    spares the join's result a second grouping (grouping sets)."""
    query = _Query(scope)
    window = query.span("received_at", scope.window.whole)
    signals = (
        "SELECT trace_id, value, toStartOfHour(received_at) AS at FROM signal_events"
        f" WHERE {query.tenancy()} AND version = 0 AND version_hash = '' AND {window}"
    )
    # Only the links of the traces these signals name: the join then costs what those
    # signals are, not every link ever stored (the answer is the same: a link of another
    # trace matches no signal). An inner join with those traces rather than ``IN``: a server
    # with runtime join filters (on by default in recent ones) then drops the other links
    # with a bloom filter of the traces as it reads them, cheaper per link than ``IN``'s
    # set; a server without them joins all the same, with the same rows.
    traces = (
        "SELECT DISTINCT assumeNotNull(trace_id) AS trace"
        f" FROM ({signals}) WHERE trace_id IS NOT NULL"
    )
    links = (
        "SELECT DISTINCT usage_links.trace_id AS trace_id, usage_links.version AS version"
        f" FROM usage_links INNER JOIN ({traces}) AS t ON usage_links.trace_id = t.trace"
        f" WHERE {query.tenancy()}"
    )
    sql = (
        f"SELECT l.version{query.bucket('s.at')},"
        " countIf(s.value = 'positive'), countIf(s.value = 'negative')"
        f" FROM ({signals}) AS s LEFT JOIN ({links}) AS l ON s.trace_id = l.trace_id"
        " GROUP BY l.version" + (", bucket" if scope.bucket is not None else "")
    )
    return sql, query.parameters


def links_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Usage links (exact) and distinct traces (a sketch) per version number.

    Link counts come from ``usage_hourly``; the traces from the daily sketches for whole days,
    the hourly ones for the whole hours beside them, the raw links for the edges."""
    query = _Query(scope)
    days, hours = query.day_and_hour_spans()
    counted = query.hourly_part(
        f"version, hour AS at, links, {NO_TRACES} AS traces", "usage_hourly"
    )
    daily = query.spans_part(
        "version, day AS at, 0 AS links, traces",
        "usage_traces_daily",
        "day",
        [] if days is None else [days],
    )
    hourly = query.spans_part(
        "version, hour AS at, 0 AS links, traces", "usage_traces_hourly", "hour", hours
    )
    raw = query.raw_part(
        "version, toStartOfHour(received_at) AS at, count() AS links,"
        f" {TRACES}State(trace_id) AS traces",
        "usage_links",
        "version, at",
    )
    sql = (
        f"SELECT version{query.bucket('at')}, sum(links), {TRACES}Merge(traces)"
        f" FROM (\n    {query.union(counted, daily, hourly, raw)}\n)" + query.group_by("version")
    )
    return sql, query.parameters


def exposures_sql(
    scope: Scope,
    *,
    deployment_ids: Sequence[uuid.UUID] | None = None,
    by_split: bool | None = None,
) -> tuple[str, dict[str, Any]]:
    """Exposures and exact distinct units per version number (and bucket); optionally only
    those decided by the given deployments, and by their split (True) or a rule (False)."""
    query = _Query(scope)
    conditions = []
    if deployment_ids is not None:
        query.parameters["deployments"] = list(deployment_ids)
        conditions.append("deployment_id IN {deployments:Array(UUID)}")
    if by_split is not None:
        query.parameters["split"] = by_split
        conditions.append("by_split = {split:Bool}")
    where = " AND ".join(conditions) or "1"
    hourly = query.hourly_part("version, hour AS at, exposures, units", "exposures_hourly", where)
    raw = query.raw_part(
        "version, toStartOfHour(received_at) AS at, count() AS exposures,"
        " uniqExactState(unit_id) AS units",
        "exposure_events",
        "version, at",
        where,
    )
    sql = (
        f"SELECT version{query.bucket('at')}, sum(exposures), uniqExactMerge(units)"
        f" FROM (\n    {query.union(hourly, raw)}\n)" + query.group_by("version")
    )
    return sql, query.parameters


Rows = Sequence[Sequence[Any]]
RunQuery = Callable[[str, dict[str, Any]], Coroutine[Any, Any, Rows]]
"""Runs one query and returns its rows (``compare.warehouse.Warehouse.rows``)."""


async def read_figures(run: RunQuery, scope: Scope) -> WarehouseFigures:
    """Run the five queries side by side (each on a client of its own), and key the rows."""
    builders = (analytics_sql, named_votes_sql, traced_votes_sql, links_sql, exposures_sql)
    try:
        async with asyncio.TaskGroup() as group:
            tasks: list[asyncio.Task[Rows]] = [
                group.create_task(run(*build(scope))) for build in builders
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the others were cancelled; one cause is enough
    analytics_rows, named_rows, traced_rows, link_rows, exposure_rows = (
        task.result() for task in tasks
    )
    bucketed = scope.bucket is not None
    analytics: dict[tuple[str, BucketKey], AnalyticsFigures] = {}
    for row in analytics_rows:
        bucket = _bucket_key(row[1]) if bucketed else None
        events, *sums, quantiles = row[2:] if bucketed else row[1:]
        analytics[(str(row[0]), bucket)] = AnalyticsFigures(
            events=int(events),
            latency=Moments(int(sums[0]), float(sums[1]), float(sums[2])),
            cost=Moments(int(sums[3]), float(sums[4]), float(sums[5])),
            score=Moments(int(sums[6]), float(sums[7]), float(sums[8])),
            latency_quantiles=(
                _quantile(quantiles[0]),
                _quantile(quantiles[1]),
                _quantile(quantiles[2]),
            ),
        )
    named: dict[tuple[int, str, BucketKey], Votes] = {}
    for row in named_rows:
        bucket = _bucket_key(row[2]) if bucketed else None
        named[(int(row[0]), str(row[1]), bucket)] = Votes(int(row[-2]), int(row[-1]))
    traced: dict[tuple[int, BucketKey], Votes] = {}
    for row in traced_rows:
        votes = Votes(int(row[-2]), int(row[-1]))
        buckets = (_bucket_key(row[1]), None) if bucketed else (None,)
        for key in ((int(row[0]), bucket) for bucket in buckets):
            traced[key] = traced.get(key, Votes()) + votes
    links: dict[tuple[int, BucketKey], Links] = {}
    for row in link_rows:
        bucket = _bucket_key(row[1]) if bucketed else None
        links[(int(row[0]), bucket)] = Links(int(row[-2]), int(row[-1]))
    exposures: dict[tuple[int, BucketKey], UnitCounts] = {}
    for row in exposure_rows:
        bucket = _bucket_key(row[1]) if bucketed else None
        exposures[(int(row[0]), bucket)] = UnitCounts(int(row[-2]), int(row[-1]))
    return WarehouseFigures(analytics, named, traced, links, exposures)
