"""Charts drawn as SVG on the server: no JavaScript, they work offline and in any browser.

Each function returns ``Markup`` to embed as is; every text that comes from users (titles,
labels, verdicts) goes through ``Markup.format``, which escapes it. Output is deterministic
(same input, same string) and coordinates are rounded to 0.1 px. The numbers are also on
the page as a table; these charts are its picture, not its only form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeGuard

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"

# Okabe-Ito, ordered so the first colours contrast best on white (its yellow comes last).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
VERDICT_CLASSES = {"better": "better", "worse": "worse", "regression": "worse"}
VERDICT_COLOURS = {"better": "#009E73", "worse": "#D55E00", "neutral": "#666666"}


@dataclass(frozen=True, slots=True)
class Point:
    """One value at one time; None is a gap (no data), not zero. A naive time is UTC."""

    at: datetime
    value: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """The points of one prompt version."""

    version: int
    label: str
    points: Sequence[Point]


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One comparison: an estimate and its interval (a side may be infinite), and a verdict."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    verdict: str
    margin: float | None = None


_POINT = (
    '<circle class="point" data-version="{}" data-at="{}" data-value="{}" '
    'cx="{}" cy="{}" r="3"><title>{}</title></circle>'
)


def line_chart(
    metric: str,
    title: str,
    series: Sequence[Series],
    *,
    unit: str = "",
    width: int = 360,
    height: int = 200,
    ceiling: float | None = None,
) -> Markup:
    """A metric over time, one line per version; a None value breaks its line (a gap).

    ``ceiling`` caps the axis for a bounded metric (a rate never passes 1).
    """
    drawn = [(s, sorted(s.points, key=lambda p: _utc(p.at))) for s in series]
    values = [p.value for _, pts in drawn for p in pts if _finite(p.value)]
    if not values:
        return _empty(width, title, "No data in this window", metric)
    times = [_utc(p.at).timestamp() for _, pts in drawn for p in pts if _finite(p.value)]
    left, right, top, bottom = 52.0, width - 16.0, 10.0, height - 46.0
    t0, t1 = min(times), max(times)
    span = t1 - t0
    top_value = max(0.0, *values) * 1.1 or 1.0
    if ceiling is not None:
        top_value = min(top_value, ceiling)
    lo, hi, ticks = _nice(min(0.0, *values), top_value)

    def sx(t: float) -> float:
        return (left + right) / 2 if span == 0 else left + (t - t0) / span * (right - left)

    def sy(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    tick_fmt = "%H:%M" if span <= 86400 else "%b %d"
    point_fmt = "%H:%M" if span <= 86400 else "%b %d %H:%M"
    parts = [
        _open("chart line-chart", width, height, title, metric),
        _axes(left, right, top, bottom),
    ]
    for v in ticks:
        y = _c(sy(v))
        parts.append(
            Markup(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e5e5e5"/>'
                '<text class="tick y-tick" x="{}" y="{}" text-anchor="end" dy="0.35em">{}</text>'
            ).format(_c(left), _c(right), y, y, _c(left - 6), y, _num(v))
        )
    fractions = (0.5,) if span == 0 else (0.0, 1 / 3, 2 / 3, 1.0)
    for f in fractions:
        x = left + f * (right - left)
        anchor = "start" if f == 0 and span else "end" if f == 1 else "middle"
        label = datetime.fromtimestamp(t0 + f * span, UTC).strftime(tick_fmt)
        parts.append(
            Markup('<text class="tick x-tick" x="{}" y="{}" text-anchor="{}">{}</text>').format(
                _c(x), _c(bottom + 16), anchor, label
            )
        )
    suffix = f" {unit}" if unit else ""
    legend_x = left
    legend = [Markup('<g class="legend">')]
    for i, (s, pts) in enumerate(drawn):
        colour = PALETTE[i % len(PALETTE)]
        group = [
            Markup('<g class="series" data-version="{}" stroke="{}" fill="{}">').format(
                s.version, colour, colour
            )
        ]
        for run in _runs(pts):
            coords = " ".join(f"{_c(sx(_utc(p.at).timestamp()))},{_c(sy(_value(p)))}" for p in run)
            group.append(
                Markup(
                    '<polyline class="line" data-version="{}" points="{}" fill="none" '
                    'stroke-width="2"/>'
                ).format(s.version, coords)
            )
        # The hot loop of a page (hundreds of points): plain str.format, the one piece of
        # text escaped by hand (Markup.format runs markupsafe's Python formatter per field).
        for p in pts:
            if not _finite(p.value):
                continue
            at = _utc(p.at)
            v = _value(p)
            label = escape(f"v{s.version} {at.strftime(point_fmt)} — {_num(v)}{suffix}")
            group.append(
                Markup(
                    _POINT.format(
                        int(s.version),
                        at.isoformat(),
                        repr(float(v)),
                        _c(sx(at.timestamp())),
                        _c(sy(v)),
                        label,
                    )
                )
            )
        group.append(Markup("</g>"))
        parts.extend(group)
        legend.append(
            Markup(
                '<g class="legend-entry" data-version="{}"><rect class="swatch" x="{}" y="{}" '
                'width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text></g>'
            ).format(
                s.version,
                _c(legend_x),
                _c(height - 20),
                colour,
                _c(legend_x + 16),
                _c(height - 10),
                s.label,
            )
        )
        legend_x += 28 + 6.5 * len(s.label)
    legend.append(Markup("</g>"))
    parts.extend(legend)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def interval_bars(
    title: str, rows: Sequence[IntervalRow], *, unit: str = "", width: int = 360
) -> Markup:
    """Each comparison's estimate and interval against zero, on one shared scale.

    The verdict is written beside its bar, so colour is never the only signal.
    """
    if not rows:
        return _empty(width, title, "No comparison yet")
    row_h, top = 30.0, 8.0
    left, right = 60.0, width - 150.0
    bottom = top + row_h * len(rows)
    height = int(bottom + 26)
    known = [0.0]
    for r in rows:
        known += [v for v in (r.low, r.high, r.estimate, r.margin) if _finite(v)]
    lo, hi = min(known), max(known)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def sx(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / (hi - lo) * (right - left)

    suffix = f" {unit}" if unit else ""
    parts = [
        _open("chart interval-chart", width, height, title),
        Markup(
            '<rect class="plot-area" x="{}" y="{}" width="{}" height="{}" fill="#f7f7f7"/>'
        ).format(_c(left), _c(top), _c(right - left), _c(bottom - top)),
    ]
    for v in _nice(lo, hi)[2]:
        if lo <= v <= hi:
            parts.append(
                Markup(
                    '<text class="tick x-tick" x="{}" y="{}" text-anchor="middle">{}</text>'
                ).format(_c(sx(v)), _c(bottom + 16), _num(v))
            )
    for i, r in enumerate(rows):
        mid = top + row_h * (i + 0.5)
        kind = VERDICT_CLASSES.get(r.verdict, "neutral")
        colour = VERDICT_COLOURS[kind]
        verdict_text = r.verdict.replace("_", " ")
        parts.append(
            Markup(
                '<g class="interval" data-label="{}" data-estimate="{}" data-low="{}" '
                'data-high="{}" data-verdict="{}"><title>{}</title>'
                '<text class="label" x="{}" y="{}" text-anchor="end" dy="0.35em">{}</text>'
            ).format(
                r.label,
                _attr(r.estimate),
                _attr(r.low),
                _attr(r.high),
                r.verdict,
                f"{r.label}: {_num(r.estimate)}{suffix} [{_num(r.low)}, {_num(r.high)}]"
                f" — {verdict_text}"
                if _finite(r.estimate)
                else f"{r.label}: not enough data — {verdict_text}",
                _c(left - 8),
                _c(mid),
                r.label,
            )
        )
        if not _finite(r.estimate):
            parts.append(
                Markup(
                    '<text class="no-data" x="{}" y="{}" dy="0.35em" fill="#666666">'
                    "not enough data</text>"
                ).format(_c(left + 6), _c(mid))
            )
        else:
            if r.low is not None and r.high is not None:
                x1, x2 = _c(sx(r.low)), _c(sx(r.high))
                parts.append(
                    Markup(
                        '<line class="bar verdict-{}" x1="{}" x2="{}" y1="{}" y2="{}" '
                        'stroke="{}" stroke-width="6"/>'
                    ).format(kind, x1, x2, _c(mid), _c(mid), colour)
                )
                for side, v, edge, tip in (("low", r.low, left, -1), ("high", r.high, right, 1)):
                    if math.isinf(v):
                        parts.append(_arrow(side, edge, mid, tip, colour))
            parts.append(
                Markup(
                    '<circle class="estimate" cx="{}" cy="{}" r="4.5" fill="#ffffff" '
                    'stroke="{}" stroke-width="2"/>'
                ).format(_c(sx(r.estimate)), _c(mid), colour)
            )
        if _finite(r.margin):
            xm = _c(sx(r.margin))
            parts.append(
                Markup(
                    '<line class="margin" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333333" '
                    'stroke-dasharray="3 2"><title>margin {}</title></line>'
                ).format(
                    xm,
                    xm,
                    _c(mid - row_h / 2 + 3),
                    _c(mid + row_h / 2 - 3),
                    _num(r.margin) + suffix,
                )
            )
        parts.append(
            Markup(
                '<text class="verdict verdict-{}" x="{}" y="{}" dy="0.35em" fill="{}">{}</text></g>'
            ).format(kind, _c(right + 8), _c(mid), colour, verdict_text)
        )
    x0 = _c(sx(0.0))
    parts.append(
        Markup(
            '<line class="zero" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#000000"/></svg>'
        ).format(x0, x0, _c(top), _c(bottom))
    )
    return Markup("").join(parts)


def _open(cls: str, width: int, height: int, title: str, metric: str | None = None) -> Markup:
    """The root element, with a ``<title>`` for screen readers and tooltips."""
    data = Markup(' data-metric="{}"').format(metric) if metric is not None else Markup("")
    return Markup(
        '<svg xmlns="{}" class="{}"{} role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="{}" height="{}" font-family="system-ui, sans-serif" font-size="11">'
        "<title>{}</title>"
    ).format(SVG_NS, cls, data, title, width, height, width, height, title)


def _empty(width: int, title: str, message: str, metric: str | None = None) -> Markup:
    """A small chart that says there is nothing to draw, rather than empty axes."""
    return Markup(
        '{}<text class="empty-message" x="{}" y="26" text-anchor="middle">{}</text></svg>'
    ).format(_open("chart empty", width, 44, title, metric), _c(width / 2), message)


def _axes(left: float, right: float, top: float, bottom: float) -> Markup:
    return Markup(
        '<g class="axes" stroke="#999999"><line x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<line x1="{}" x2="{}" y1="{}" y2="{}"/></g>'
    ).format(_c(left), _c(left), _c(top), _c(bottom), _c(left), _c(right), _c(bottom), _c(bottom))


def _arrow(side: str, edge: float, mid: float, tip: int, colour: str) -> Markup:
    """An arrowhead at the plot's edge: the interval goes on past it (one-sided)."""
    back = edge - 7 * tip
    points = f"{_c(edge)},{_c(mid)} {_c(back)},{_c(mid - 6)} {_c(back)},{_c(mid + 6)}"
    return Markup('<polygon class="open-end" data-side="{}" points="{}" fill="{}"/>').format(
        side, points, colour
    )


def _runs(points: Sequence[Point]) -> list[list[Point]]:
    """The unbroken runs of a series: a None (or NaN) value ends one."""
    runs: list[list[Point]] = [[]]
    for p in points:
        if _finite(p.value):
            runs[-1].append(p)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _nice(lo: float, hi: float) -> tuple[float, float, list[float]]:
    """The range widened to round steps (1, 2 or 5 times 10**n) and about four ticks."""
    raw = (hi - lo) / 4 or 1.0
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start, end = math.floor(lo / step), math.ceil(hi / step)
    return start * step, end * step, [k * step for k in range(start, end + 1)]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _finite(v: float | None) -> TypeGuard[float]:
    """A value to draw: None is no data, and NaN or an infinity has no place on an axis."""
    return v is not None and math.isfinite(v)


def _value(p: Point) -> float:
    assert p.value is not None
    return float(p.value)


def _c(v: float) -> str:
    """A coordinate rounded to 0.1 px, without a trailing ".0" or a "-0"."""
    s = f"{v:.1f}".removesuffix(".0")
    return "0" if s == "-0" else s


def _attr(v: float | None) -> str:
    """A number exactly (``repr``: "inf" for an open side), "" for None."""
    return "" if v is None else repr(float(v))


def _num(v: float | None) -> str:
    """A number for people: three significant digits, with k, M or G for large ones."""
    if v is None:
        return "\u2013"  # en dash
    if math.isinf(v):
        return "∞" if v > 0 else "\u2212∞"  # minus sign
    r = float(f"{v:.3g}")
    for size, letter in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(r) >= size:
            return f"{r / size:.3g}{letter}"
    s = f"{r:.3g}"
    return "0" if s == "-0" else s
