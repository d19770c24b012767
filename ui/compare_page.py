"""Compare: each version of a prompt against a baseline, as a table, intervals and series.

The page asks compare's own report (``compare.api.comparison``), so its figures are the
API's. Every window is whole hours: presets start on one and stay open at the end, and a
custom window is widened to whole hours. So the page reads the hourly aggregates alone,
never a raw table's ragged edge, however many events are stored. While a guarded rollout
runs, the differences shown for its guardrails are the guard's always-valid intervals,
not compare's fixed-horizon ones: looking at them as often as one likes is then safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from compare.api import comparison
from compare.queries import Scope
from compare.warehouse import WAREHOUSE
from compare.window import Bucket, Window, ceil_hour, floor_hour, parse_instant
from controlplane.api.references import prompt_in_catalog
from controlplane.rollouts.lifecycle import latest_rollout
from controlplane.store.models import Rollout, RolloutStatus
from promptline.http.errors import ApiError, ErrorKind
from ui.charts import IntervalRow, Point, Series, interval_bars, line_chart
from ui.handling import page, public_url
from ui.prompt_page import public_id, viewed_prompt
from ui.render import RENDERER
from ui.viewer import Viewer

PRESETS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
CUSTOM_HOURLY_UP_TO = timedelta(days=3)
"""A custom window up to this long is drawn by the hour, a longer one by the day."""


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure the page shows: where it sits in a report entry and how it reads."""

    key: str
    title: str
    unit: str
    difference: str | None = None
    """Its key in ``vs_baseline`` and in a guard's guardrails, if it is compared."""
    ceiling: float | None = None
    """The most it can be (a rate: 1), to cap its chart's axis."""


SERIES_METRICS = (
    Metric("events", "Events", ""),
    Metric("exposures", "Exposures", ""),
    Metric("latency_ms.p50", "Latency p50", "ms"),
    Metric("latency_ms.p95", "Latency p95", "ms"),
    Metric("cost_usd.mean", "Cost per event", "USD"),
    Metric("score.mean", "Mean score", ""),
    Metric("signals.positive_rate", "Positive rate", "", ceiling=1.0),
)
COMPARED = (
    Metric("latency_ms.mean", "Latency (mean)", "ms", "latency_ms"),
    Metric("cost_usd.mean", "Cost per event", "USD", "cost_usd"),
    Metric("score.mean", "Score", "", "score"),
    Metric("signals.positive_rate", "Positive rate", "", "positive_rate"),
)
VERDICT_WORDS = {
    "better": "better than the baseline",
    "worse": "worse than the baseline",
    "no_significant_difference": "no significant difference",
}


def figure(entry: dict[str, Any], key: str) -> float | None:
    """A dotted key's value in a report entry (``latency_ms.p50``)."""
    value: Any = entry
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class Chosen:
    """The window and bucket the viewer picked, as the form shows them again."""

    preset: str
    window: Window
    bucket: Bucket
    start_text: str
    end_text: str


def _instant(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError as error:
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"'{name}' must be a date and time, e.g. 2026-02-19T14:30."
        ) from error


def choose_window(request: web.Request, now: datetime) -> Chosen:
    """The window of the query string: a preset ending now, or custom ``from``/``to``."""
    preset = request.query.get("window", "day")
    if preset == "custom":  # whole hours: the aggregates alone answer, never the raw rows
        start, end = _instant(request, "from"), _instant(request, "to")
        start = floor_hour(start) if start is not None else None
        end = ceil_hour(end) if end is not None else None
        try:
            window = Window(start, end)
        except ValueError as error:
            raise ApiError(ErrorKind.INVALID_REQUEST, str(error)) from error
        span = (end or now) - (start or now - timedelta(days=365))
        bucket = Bucket.HOUR if span <= CUSTOM_HOURLY_UP_TO else Bucket.DAY
        return Chosen(preset, window, bucket, _text(start), _text(end))
    length = PRESETS.get(preset)
    if length is None:
        raise ApiError(ErrorKind.INVALID_REQUEST, "'window' must be hour, day, week or custom.")
    start = floor_hour(now - length)
    bucket = Bucket.DAY if preset == "week" else Bucket.HOUR
    return Chosen(preset, Window(start, None), bucket, _text(start), "")


def _text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M") if moment is not None else ""


def series_charts(report: dict[str, Any]) -> list[tuple[Metric, Any]]:
    """One chart per metric, a line per version that has any point in the window."""
    charts = []
    for metric in SERIES_METRICS:
        lines = []
        for entry in report["versions"]:
            points = [
                Point(parse_instant(item["start"].replace("Z", "+00:00")), figure(item, metric.key))
                for item in entry.get("series") or []
            ]
            if any(point.value is not None for point in points):
                lines.append(Series(entry["version"], f"v{entry['version']}", points))
        chart = line_chart(
            metric.key, metric.title, lines, unit=metric.unit, ceiling=metric.ceiling
        )
        charts.append((metric, chart))
    return charts


def _bound(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def compare_intervals(report: dict[str, Any]) -> list[tuple[Metric, Any]]:
    """Per compared metric, each version's difference from the baseline with its 95% CI."""
    charts = []
    baseline = report["baseline"]
    for metric in COMPARED:
        rows = []
        for entry in report["versions"]:
            versus = (entry.get("vs_baseline") or {}).get(metric.difference or "")
            if entry["is_baseline"] or not (entry["events"] or entry["signals"]["total"]):
                continue
            low, high = (versus or {}).get("ci95") or (None, None)
            rows.append(
                IntervalRow(
                    label=f"v{entry['version']} - v{baseline}",
                    estimate=_bound((versus or {}).get("difference")),
                    low=_bound(low),
                    high=_bound(high),
                    verdict=str((versus or {}).get("verdict", "not enough data")),
                )
            )
        title = f"{metric.title}: difference from v{baseline}, 95% confidence interval"
        charts.append((metric, interval_bars(title, rows, unit=metric.unit)))
    return charts


def guard_intervals(rollout: Rollout) -> list[tuple[dict[str, Any], Any]]:
    """The guard's latest look: per guardrail, its always-valid one-sided interval."""
    report = rollout.report or {}
    charts = []
    for guardrail in report.get("guardrails", []):
        interval = guardrail.get("interval") or {}
        lower, upper = _bound(interval.get("lower")), _bound(interval.get("upper"))
        row = IntervalRow(
            label=f"v{rollout.candidate} - v{rollout.baseline}",
            estimate=_bound(guardrail.get("estimate")),
            low=lower if lower is not None else -math.inf,
            high=upper if upper is not None else math.inf,
            verdict=str(guardrail.get("verdict", "")),
            margin=_bound(guardrail.get("limit")),
        )
        title = f"{guardrail.get('metric', '')}: the guard's always-valid interval and limit"
        charts.append((guardrail, interval_bars(title, [row])))
    return charts


@page("GET /ui/prompts/:prompt_id/compare")
async def compare_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The comparison over the chosen window, against the chosen baseline."""
    now = datetime.now(UTC)
    chosen = choose_window(request, now)
    async with viewer.plane.sessions() as session:
        prompt = await viewed_prompt(session, viewer, request)
        rollout = await latest_rollout(session, prompt.id)
    entry = prompt_in_catalog(viewer.catalog, viewer.principal.project_id, str(prompt.id))
    if entry is None:  # created a moment ago in another process: the catalog has not caught up
        raise ApiError(ErrorKind.UNAVAILABLE, "This prompt is still loading; retry.", retry_after=1)
    requested = request.query.get("baseline") or None
    scope = Scope(viewer.principal.project_id, entry.id, chosen.window, chosen.bucket)
    report = await comparison(
        request.app[WAREHOUSE],
        viewer.plane.sessions,
        viewer.principal.project_id,
        entry,
        scope,
        requested,
    )
    guarded = rollout if rollout is not None and rollout.status == RolloutStatus.RUNNING else None
    empty = not any(item["events"] or item["signals"]["total"] for item in report["versions"])
    return request.app[RENDERER].page(
        "compare.html",
        viewer=viewer,
        signed_in=True,
        prompt=prompt,
        prompt_id=public_id(prompt),
        report=report,
        chosen=chosen,
        presets=list(PRESETS),
        empty=empty,
        figure=figure,
        compared=COMPARED,
        verdict_words=VERDICT_WORDS,
        series=series_charts(report),
        intervals=[] if guarded is not None else compare_intervals(report),
        guarded=guarded,
        guard_charts=guard_intervals(guarded) if guarded is not None else [],
        public_url=public_url(request),
    )
