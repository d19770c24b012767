"""The SVG charts, read back as XML: what they draw, where, and that user text stays text."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

from markupsafe import Markup

from ui.charts import IntervalRow, Point, Series, interval_bars, line_chart

NS = {"svg": "http://www.w3.org/2000/svg"}
SVG = "{http://www.w3.org/2000/svg}"
INF = math.inf


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 10, hour, minute, tzinfo=UTC)


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def floats(text: str | None) -> float:
    assert text is not None
    return float(text)


def polyline_points(line: ET.Element) -> list[tuple[float, float]]:
    pairs = (pair.split(",") for pair in line.get("points", "").split())
    return [(float(x), float(y)) for x, y in pairs]


def two_versions() -> list[Series]:
    return [
        Series(1, "v1 (current)", [Point(at(9), 100.0), Point(at(10), 120.5), Point(at(11), 90.0)]),
        Series(2, "v2 (candidate)", [Point(at(9), 80.25), Point(at(11), 300.0)]),
    ]


def test_line_chart_root_names_its_metric_and_title_and_is_svg() -> None:
    root = parse(line_chart("latency_ms", "Latency (p95)", two_versions(), unit="ms"))
    assert root.tag == f"{SVG}svg"
    assert root.get("class") == "chart line-chart"
    assert root.get("data-metric") == "latency_ms"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Latency (p95)"
    title = root.find("svg:title", NS)
    assert title is not None
    assert title.text == "Latency (p95)"


def test_one_series_group_per_version_with_a_circle_per_point() -> None:
    root = parse(line_chart("latency_ms", "Latency", two_versions(), unit="ms"))
    groups = root.findall(".//svg:g[@class='series']", NS)
    assert [g.get("data-version") for g in groups] == ["1", "2"]
    circles = {
        g.get("data-version"): [
            (c.get("data-at"), c.get("data-value"))
            for c in g.findall("svg:circle[@class='point']", NS)
        ]
        for g in groups
    }
    assert circles == {
        "1": [
            ("2026-01-10T09:00:00+00:00", "100.0"),
            ("2026-01-10T10:00:00+00:00", "120.5"),
            ("2026-01-10T11:00:00+00:00", "90.0"),
        ],
        "2": [("2026-01-10T09:00:00+00:00", "80.25"), ("2026-01-10T11:00:00+00:00", "300.0")],
    }
    first = groups[1].find("svg:circle", NS)
    assert first is not None
    tooltip = first.find("svg:title", NS)
    assert tooltip is not None
    assert tooltip.text == "v2 09:00 — 80.2 ms"


def test_series_get_distinct_colours_and_a_legend_entry_each() -> None:
    root = parse(line_chart("latency_ms", "Latency", two_versions()))
    colours = [g.get("stroke") for g in root.findall(".//svg:g[@class='series']", NS)]
    assert len(set(colours)) == 2
    legend = root.find(".//svg:g[@class='legend']", NS)
    assert legend is not None
    texts = [t.text for t in legend.iter(f"{SVG}text")]
    assert texts == ["v1 (current)", "v2 (candidate)"]
    swatches = [r.get("fill") for r in legend.iter(f"{SVG}rect")]
    assert swatches == colours


def test_times_are_written_in_utc_whatever_their_zone() -> None:
    paris = timezone(timedelta(hours=1))
    series = [Series(3, "v3", [Point(datetime(2026, 1, 10, 10, 0, tzinfo=paris), 1.0)])]
    circle = parse(line_chart("m", "t", series)).find(".//svg:circle", NS)
    assert circle is not None
    assert circle.get("data-at") == "2026-01-10T09:00:00+00:00"


def test_a_none_in_the_middle_splits_the_line_in_two() -> None:
    points = [Point(at(9), 1.0), Point(at(10), 2.0), Point(at(11), None), Point(at(12), 3.0)]
    root = parse(line_chart("m", "t", [Series(1, "v1", points)]))
    lines = root.findall(".//svg:polyline[@class='line']", NS)
    assert [len(polyline_points(line)) for line in lines] == [2, 1]
    assert len(root.findall(".//svg:circle[@class='point']", NS)) == 3


def test_x_grows_with_time_and_a_higher_value_is_drawn_higher() -> None:
    points = [Point(at(12), 50.0), Point(at(9), 10.0), Point(at(10, 30), 30.0)]
    root = parse(line_chart("m", "t", [Series(1, "v1", points)]))
    circles = root.findall(".//svg:circle[@class='point']", NS)
    by_time = sorted(circles, key=lambda c: c.get("data-at", ""))
    xs = [floats(c.get("cx")) for c in by_time]
    ys = [floats(c.get("cy")) for c in by_time]
    assert xs[0] < xs[1] < xs[2]
    # Values 10, 30, 50 in time order: each later one is higher, so its y is smaller.
    assert ys[0] > ys[1] > ys[2]
    (line,) = root.findall(".//svg:polyline", NS)
    assert [x for x, _ in polyline_points(line)] == xs


def test_negative_values_lie_below_zero() -> None:
    points = [Point(at(9), -20.0), Point(at(10), 40.0)]
    root = parse(line_chart("m", "t", [Series(1, "v1", points)]))
    ys = [floats(c.get("cy")) for c in root.findall(".//svg:circle", NS)]
    zero = [t for t in root.findall(".//svg:text[@class='tick y-tick']", NS) if t.text == "0"]
    assert len(zero) == 1
    zero_y = floats(zero[0].get("y"))
    assert ys[0] > zero_y > ys[1]


def test_user_text_is_escaped_not_markup() -> None:
    evil = "<script>alert(1)</script>"
    markup = line_chart('m"x', evil, [Series(1, evil, [Point(at(9), 1.0)])])
    assert "<script>" not in markup
    root = parse(markup)
    assert not list(root.iter(f"{SVG}script"))
    assert not list(root.iter("script"))
    assert root.get("aria-label") == evil
    assert root.get("data-metric") == 'm"x'
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert evil in texts


def test_a_single_point_is_centred() -> None:
    markup = line_chart("m", "t", [Series(1, "v1", [Point(at(9), 5.0)])], width=600)
    circle = parse(markup).find(".//svg:circle", NS)
    assert circle is not None
    x = floats(circle.get("cx"))
    assert math.isfinite(x)
    assert 200 < x < 400


def test_no_series_or_only_none_values_give_the_empty_chart() -> None:
    for series in ([], [Series(1, "v1", [Point(at(9), None)])], [Series(1, "v1", [])]):
        root = parse(line_chart("latency_ms", "Latency", series))
        assert root.get("class") == "chart empty"
        assert root.get("data-metric") == "latency_ms"
        assert [t.text for t in root.iter(f"{SVG}text")] == ["No data in this window"]
        assert not root.findall(".//svg:circle", NS)


def test_output_is_deterministic_and_coordinates_are_rounded() -> None:
    points = [Point(at(9, m), v) for m, v in ((0, 1 / 3), (7, 2 / 3), (13, 0.1 + 0.2))]
    first = line_chart("m", "t", [Series(1, "v1", points)])
    assert first == line_chart("m", "t", [Series(1, "v1", points)])
    for circle in parse(first).iter(f"{SVG}circle"):
        for name in ("cx", "cy"):
            value = circle.get(name, "")
            assert len(value.partition(".")[2]) <= 1


def comparison() -> list[IntervalRow]:
    return [
        IntervalRow("latency", -5.0, -12.0, 3.0, "no_significant_difference"),
        IntervalRow("cost", 2.0, -1.0, INF, "inconclusive", margin=10.0),
        IntervalRow("errors", 4.0, 1.0, 6.0, "worse"),
        IntervalRow("score", None, None, None, "inconclusive"),
    ]


def row(root: ET.Element, label: str) -> ET.Element:
    (group,) = [
        g for g in root.findall(".//svg:g[@class='interval']", NS) if g.get("data-label") == label
    ]
    return group


def test_interval_rows_carry_their_numbers_and_verdict() -> None:
    root = parse(interval_bars("v2 against v1", comparison(), unit="ms"))
    assert root.get("class") == "chart interval-chart"
    assert root.get("aria-label") == "v2 against v1"
    groups = root.findall(".//svg:g[@class='interval']", NS)
    assert [
        (g.get("data-label"), g.get("data-estimate"), g.get("data-low"), g.get("data-high"))
        for g in groups
    ] == [
        ("latency", "-5.0", "-12.0", "3.0"),
        ("cost", "2.0", "-1.0", "inf"),
        ("errors", "4.0", "1.0", "6.0"),
        ("score", "", "", ""),
    ]
    verdicts = [g.find("svg:text[@class='verdict verdict-worse']", NS) for g in groups]
    assert verdicts[2] is not None
    assert verdicts[2].text == "worse"
    neutral = groups[0].find(".//svg:text[@class='verdict verdict-neutral']", NS)
    assert neutral is not None
    assert neutral.text == "no significant difference"


def test_the_zero_line_lies_between_low_and_high() -> None:
    root = parse(interval_bars("t", comparison()))
    (zero,) = root.findall(".//svg:line[@class='zero']", NS)
    zero_x = floats(zero.get("x1"))
    assert zero.get("x1") == zero.get("x2")
    bar = row(root, "latency").find("svg:line[@class='bar verdict-neutral']", NS)
    assert bar is not None
    low_x, high_x = floats(bar.get("x1")), floats(bar.get("x2"))
    assert low_x < zero_x < high_x
    dot = row(root, "latency").find("svg:circle[@class='estimate']", NS)
    assert dot is not None
    assert low_x < floats(dot.get("cx")) < zero_x
    # A bar wholly above zero starts right of it.
    worse = row(root, "errors").find("svg:line[@class='bar verdict-worse']", NS)
    assert worse is not None
    assert zero_x < floats(worse.get("x1")) < floats(worse.get("x2"))


def test_an_infinite_high_reaches_the_right_edge_and_is_marked_open() -> None:
    root = parse(interval_bars("t", comparison()))
    plot = root.find("svg:rect[@class='plot-area']", NS)
    assert plot is not None
    right_edge = floats(plot.get("x")) + floats(plot.get("width"))
    cost = row(root, "cost")
    bar = cost.find("svg:line[@class='bar verdict-neutral']", NS)
    assert bar is not None
    assert floats(bar.get("x2")) == right_edge
    (marker,) = cost.findall("svg:polygon[@class='open-end']", NS)
    assert marker.get("data-side") == "high"
    assert not row(root, "latency").findall("svg:polygon[@class='open-end']", NS)
    # The other rows' finite highs stay inside the plot.
    latency_bar = row(root, "latency").find("svg:line", NS)
    assert latency_bar is not None
    assert floats(latency_bar.get("x2")) < right_edge


def test_an_infinite_low_reaches_the_left_edge() -> None:
    root = parse(interval_bars("t", [IntervalRow("a", -1.0, -INF, 2.0, "ok")]))
    plot = root.find("svg:rect[@class='plot-area']", NS)
    assert plot is not None
    bar = row(root, "a").find("svg:line[@class='bar verdict-neutral']", NS)
    assert bar is not None
    assert floats(bar.get("x1")) == floats(plot.get("x"))
    (marker,) = row(root, "a").findall("svg:polygon[@class='open-end']", NS)
    assert marker.get("data-side") == "low"


def test_a_margin_is_drawn_only_where_given_and_inside_the_scale() -> None:
    root = parse(interval_bars("t", comparison()))
    plot = root.find("svg:rect[@class='plot-area']", NS)
    assert plot is not None
    left = floats(plot.get("x"))
    right = left + floats(plot.get("width"))
    (margin,) = row(root, "cost").findall("svg:line[@class='margin']", NS)
    x = floats(margin.get("x1"))
    assert left < x < right
    # 10 is the largest finite value: the margin lies right of every finite bar end.
    errors_bar = row(root, "errors").find("svg:line", NS)
    assert errors_bar is not None
    assert x > floats(errors_bar.get("x2"))
    assert not root.findall(".//svg:g[@data-label='latency']/svg:line[@class='margin']", NS)


def test_a_row_without_an_estimate_says_not_enough_data() -> None:
    root = parse(interval_bars("t", comparison()))
    score = row(root, "score")
    assert [t.text for t in score.findall("svg:text[@class='no-data']", NS)] == ["not enough data"]
    assert not score.findall("svg:line", NS)
    assert not score.findall("svg:circle", NS)


def test_interval_labels_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    markup = interval_bars(evil, [IntervalRow(evil, 1.0, 0.0, 2.0, evil)])
    root = parse(markup)
    assert not list(root.iter(f"{SVG}script"))
    assert root.get("aria-label") == evil
    group = row(root, evil)
    assert group.get("data-verdict") == evil
    assert evil in [t.text for t in group.iter(f"{SVG}text")]


def test_no_rows_give_the_empty_chart() -> None:
    root = parse(interval_bars("Comparison", []))
    assert root.get("class") == "chart empty"
    assert [t.text for t in root.iter(f"{SVG}text")] == ["No comparison yet"]


def test_a_ceiling_caps_the_axis_of_a_bounded_metric() -> None:
    rates = [Series(1, "v1", [Point(at(9), 0.95), Point(at(10), 0.99)])]
    free = ET.fromstring(str(line_chart("rate", "Rate", rates)))
    capped = ET.fromstring(str(line_chart("rate", "Rate", rates, ceiling=1.0)))

    def highest_tick(root: ET.Element) -> float:
        labels = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
        return max(float(label) for label in labels if label.replace(".", "", 1).isdigit())

    assert highest_tick(free) > 1.0
    assert highest_tick(capped) == 1.0
