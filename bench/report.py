"""Every benchmark in one command, and one table of their figures beside their baselines.

Run: ``.venv/bin/python -m bench.report [--only NAME ...] [--tiny] [--args NAME="..."]``
(about 25 minutes with the default sizes). Needs what the benchmarks need (``wrk``, the
``local`` and ``dev`` extras).

Each benchmark runs as a subprocess, one after the other (on a shared machine two at once
would measure each other), with modest sizes; its output is shown as it comes and its key
figures are read from the JSON it writes (``--json``, ``bench.figures``). The table gives
each figure, the baseline the benchmark measured in the same run, the ratio, and the
1-minute load average before and after the benchmark: a figure taken while the machine
was busy with other work says so. (``parse_worker_throughput`` reads the lines of a
``bench.worker_throughput`` from before its ``--json``.)
``bench.soak`` runs only when named (``--only soak``): it is long by design.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.figures import Figure, figure, read_json

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark module, its arguments by default and for a smoke run, and how it reports."""

    name: str
    default: str
    tiny: str
    parse: Callable[[str], list[Figure]] | None = None
    """For a module without ``--json``: its figures from its printed output."""
    optional: bool = False
    """Run only when named with ``--only``."""


@dataclass(slots=True)
class Outcome:
    """One benchmark's run: its figures, the load around it, and whether it failed."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0
    seconds: float = 0.0
    error: str | None = None


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_worker_throughput(output: str) -> list[Figure]:
    """``bench.worker_throughput``'s figures from what it prints.

    TODO: replace with its ``--json`` once that file's rework has landed (it is being
    changed elsewhere); until then its lines are the interface. The bare loop's lines are
    read when present (the rework adds them).
    """
    rate = re.search(r"^throughput: ([\d,.]+) events/s", output, re.MULTILINE)
    if rate is None:
        return []
    bare = re.search(r"^bare loop \(.*?\): ([\d,.]+) events/s, CPU ([\d.]+) us/event", output, re.M)
    cpu = re.search(r"^worker CPU: ([\d.]+) us/event", output, re.MULTILINE)
    made = [
        figure(
            "worker events/s vs bare loop" if bare else "worker events/s",
            _number(rate.group(1)),
            "events/s",
            _number(bare.group(1)) if bare else None,
        )
    ]
    if cpu:
        made.append(
            figure(
                "worker CPU per event vs bare loop" if bare else "worker CPU per event",
                _number(cpu.group(1)),
                "us",
                _number(bare.group(2)) if bare else None,
            )
        )
    return made


BENCHMARKS = (
    Benchmark("resolve_engine", "--calls 100000", "--prompts 100 --calls 2000"),
    Benchmark("resolve_handler", "--calls 20000", "--calls 1000"),
    Benchmark("resolve_http", "--rounds 10", "--rounds 1 --duration 1 --build pure"),
    Benchmark("resolve_exposures", "--rounds 6", "--rounds 1 --duration 1"),
    Benchmark(
        "sdk",
        "--resolves 100000 --events 20000 --deploys 10",
        "--resolves 2000 --http 200 --events 2000 --deploys 2",
    ),
    Benchmark("edge_load", "--events 20000 --seconds 8", "--events 500 --seconds 2"),
    Benchmark("serve_processes", "--rounds 4 --duration 4", "--rounds 1 --duration 1"),
    Benchmark(
        "worker_throughput",
        "--events 100000",
        "--events 20000 --batch-rows 2000",  # several batches: it times from the first one
    ),
    Benchmark(
        "worker_dedup",
        "--events 100000 --stored 10000000",
        "--events 20000 --batch-rows 2000 --stored 100000",
    ),
    Benchmark("compare_latency", "--events 3000000 --repeat 9", "--events 20000 --repeat 2"),
    Benchmark("ui_compare", "--events 3000000 --repeat 9", "--events 20000 --repeat 2"),
    Benchmark(
        "soak",
        "--minutes 10",
        "--minutes 1 --minute-seconds 20 --probe-seconds 5 --catch-up-seconds 60",
        optional=True,
    ),
)


def load1() -> float:
    """The 1-minute load average (``/proc/loadavg``)."""
    return os.getloadavg()[0]


def run_one(bench: Benchmark, arguments: list[str], echo: bool) -> Outcome:
    """Run one benchmark module to its end; its figures, or why there are none."""
    outcome = Outcome(bench.name, load_before=load1())
    with tempfile.TemporaryDirectory(prefix="promptline-report-") as folder:
        target = Path(folder) / "figures.json"
        command = [sys.executable, "-m", f"bench.{bench.name}", *arguments]
        print(f"\n== {shlex.join(command[1:])}  (load {outcome.load_before:.2f})", flush=True)
        if bench.parse is None:
            command += ["--json", str(target)]
        started = time.monotonic()
        lines: list[str] = []
        with subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if echo:
                    print(f"   {line}", end="", flush=True)
        outcome.seconds = time.monotonic() - started
        outcome.load_after = load1()
        if process.returncode != 0:
            tail = "".join(lines[-3:]).strip().splitlines()
            outcome.error = f"exit {process.returncode}: {tail[-1] if tail else ''}"
        elif bench.parse is not None:
            outcome.figures = bench.parse("".join(lines))
        elif target.exists():
            outcome.figures = read_json(target)
        if not outcome.figures and outcome.error is None:
            outcome.error = "no figures reported"
    return outcome


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    size = abs(value)
    text = f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _ratio(ratio: float | None) -> str:
    """Two decimals; two significant digits below 0.1, where two decimals would show 0.00."""
    if ratio is None:
        return ""
    return f"{ratio:.2f}" if abs(ratio) >= 0.1 else f"{ratio:.2g}"


def table(outcomes: list[Outcome]) -> list[str]:
    """The printed table: a row per figure; the load average on each benchmark's first row."""
    header = ("benchmark", "figure", "value", "baseline", "ratio", "load before", "load after")
    rows: list[tuple[str, ...]] = []
    for outcome in outcomes:
        load = (f"{outcome.load_before:.2f}", f"{outcome.load_after:.2f}")
        if outcome.error is not None:
            rows.append((outcome.benchmark, f"FAILED ({outcome.error})", "", "", "", *load))
        for index, item in enumerate(outcome.figures):
            rows.append(
                (
                    outcome.benchmark if index == 0 else "",
                    item["figure"],
                    _value(item["value"], item["unit"]),
                    _value(item["baseline"], item["unit"]),
                    _ratio(item["ratio"]),
                    *(load if index == 0 and outcome.error is None else ("", "")),
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [bench.name for bench in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, help="these benchmarks, in order")
    parser.add_argument("--tiny", action="store_true", help="smoke sizes: checks, not figures")
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help="arguments for one benchmark instead of its defaults (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="show only the table")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the table as JSON")
    args = parser.parse_args()
    given: dict[str, list[str]] = {}
    for item in args.args:
        name, _, text = item.partition("=")
        if name not in names:
            parser.error(f"--args: no benchmark {name!r}")
        given[name] = shlex.split(text)
    chosen = [b for b in BENCHMARKS if (b.name in args.only if args.only else not b.optional)]
    loads = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at start: {loads}; {os.cpu_count()} CPUs")
    started = time.monotonic()
    outcomes = []
    for bench in chosen:
        arguments = given.get(bench.name, shlex.split(bench.tiny if args.tiny else bench.default))
        outcomes.append(run_one(bench, arguments, echo=not args.quiet))
    note = " (tiny sizes: a check that each runs, not figures to quote)" if args.tiny else ""
    print(f"\n{len(outcomes)} benchmark(s) in {(time.monotonic() - started) / 60:.1f} min{note}")
    for line in table(outcomes):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")


if __name__ == "__main__":
    main()
