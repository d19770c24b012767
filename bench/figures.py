"""Key figures of a benchmark as JSON (``--json PATH``), so ``bench.report`` need not parse prose.

Each figure is a value with its unit and, where the benchmark measures one in the same run,
the baseline it is judged against and the ratio. The ratio is value/baseline unless the
benchmark computes a better one (e.g. the median of per-round ratios, which a shared
machine's bursts of load move less).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TypedDict


class Figure(TypedDict):
    """One figure of a benchmark, as ``bench.report`` tabulates it."""

    figure: str
    value: float
    unit: str
    baseline: float | None
    ratio: float | None


def figure(
    name: str,
    value: float,
    unit: str,
    baseline: float | None = None,
    ratio: float | None = None,
) -> Figure:
    """A figure; the ratio defaults to value/baseline when there is a baseline."""
    if ratio is None and baseline:
        ratio = value / baseline
    return Figure(figure=name, value=value, unit=unit, baseline=baseline, ratio=ratio)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """The ``--json PATH`` option every benchmark shares."""
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the key figures as JSON to PATH"
    )


def write_json(path: Path | None, benchmark: str, figures: list[Figure]) -> None:
    """Write ``figures`` to ``path`` (nothing when no path was asked for)."""
    if path is None:
        return
    path.write_text(json.dumps({"benchmark": benchmark, "figures": figures}, indent=2) + "\n")


def read_json(path: Path) -> list[Figure]:
    """The figures a benchmark wrote with :func:`write_json`."""
    data = json.loads(path.read_text())
    return [
        figure(
            str(item["figure"]),
            float(item["value"]),
            str(item.get("unit", "")),
            None if item.get("baseline") is None else float(item["baseline"]),
            None if item.get("ratio") is None else float(item["ratio"]),
        )
        for item in data["figures"]
    ]
