"""The benchmarks' bookkeeping: figures through JSON into one table, and the soak's verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.figures import figure, read_json, write_json
from bench.report import Outcome, parse_worker_throughput, table
from bench.soak import Minute, is_resolve, judge
from bench.worker_services import local_service_pids
from promptline.settings import Settings

WORKER_OUTPUT = """\
loaded 2000 records into Kafka in 0.4s
workers: 1, partitions per topic: 6
group join and first insert: 3.1s
stored 1900 rows (100 duplicates dropped) in 0.8s
throughput: 12,345 events/s
worker CPU: 41.5 us/event (whole life, start-up and join included: 900.1)
bare loop (consume, orjson, insert, commit): 24,690 events/s, CPU 20.0 us/event
worker / bare: 50%
"""


def test_figures_written_as_json_come_back_with_their_ratio(tmp_path: Path) -> None:
    target = tmp_path / "figures.json"
    write_json(target, "x", [figure("rate", 50.0, "req/s", 100.0), figure("p99", 3.0, "ms")])
    back = read_json(target)
    assert [(f["figure"], f["ratio"]) for f in back] == [("rate", 0.5), ("p99", None)]
    write_json(None, "x", back)  # no path asked for: nothing written, no error


def test_a_given_ratio_wins_over_value_over_baseline() -> None:
    assert figure("rate", 50.0, "req/s", 100.0, ratio=0.6)["ratio"] == 0.6


def test_the_worker_benchmark_is_read_from_its_printed_lines() -> None:
    rate, cpu = parse_worker_throughput(WORKER_OUTPUT)
    assert (rate["value"], rate["baseline"], rate["ratio"]) == (12345.0, 24690.0, 0.5)
    assert (cpu["value"], cpu["baseline"]) == (41.5, 20.0)
    older = "throughput: 9,000 events/s\n"  # before its bare loop: no baseline
    (alone,) = parse_worker_throughput(older)
    assert (alone["value"], alone["baseline"], alone["ratio"]) == (9000.0, None, None)
    assert parse_worker_throughput("Traceback ...") == []


def test_the_table_shows_each_figure_and_a_failure_with_the_load_around_it() -> None:
    ok = Outcome("edge_load", [figure("events/s", 1500.0, "events/s", 3000.0)], 1.5, 2.25)
    failed = Outcome("sdk", load_before=2.0, load_after=2.0, error="exit 1: boom")
    lines = table([ok, failed])
    assert lines[0].split() == [
        "benchmark", "figure", "value", "baseline", "ratio", "load", "before", "load", "after",
    ]  # fmt: skip
    assert lines[2].split() == [
        "edge_load", "events/s", "1,500", "events/s", "3,000", "events/s", "0.50", "1.50", "2.25",
    ]  # fmt: skip
    assert "FAILED (exit 1: boom)" in lines[3]


def _minutes(p99: list[float], serve: list[float]) -> list[Minute]:
    return [
        Minute(n + 1, 60_000, 60_000, 0, 1.0, p, rss, 200.0, 1.0, 0.3)
        for n, (p, rss) in enumerate(zip(p99, serve, strict=True))
    ]


def test_the_soak_is_not_judged_on_fewer_than_ten_minutes() -> None:
    assert judge(_minutes([5.0] * 9, [100.0] * 9)) is None


def test_the_soak_verdict_takes_memory_from_minute_five_and_p99_against_minutes_five_to_ten() -> (
    None
):
    p99 = [50.0, 9, 9, 9, 10, 10, 10, 10, 10, 10, 11.9, 10]  # minute 1's warm-up is not judged
    steady = judge(_minutes(p99, [90.0, 95, 98, 99, *[100.0] * 7, 104.0]))
    assert steady is not None
    assert steady.memory_ok and steady.p99_ok
    assert steady.worst_minute == 11
    slow = judge(_minutes([*p99[:-1], 12.5], [90.0, 95, 98, 99, *[100.0] * 7, 106.0]))
    assert slow is not None
    assert not slow.memory_ok and not slow.p99_ok


def test_the_mix_holds_its_share_of_resolves_exactly() -> None:
    assert sum(is_resolve(n, 0.7) for n in range(1000)) == 700
    assert sum(is_resolve(n, 0.7) for n in range(10)) == 7


def test_the_worker_bench_finds_the_local_services_by_their_ports() -> None:
    """The worker bench reads the local services' CPU beside the worker's: it must find each
    by the port its settings name, and nothing for a port no local service listens on."""
    sleeper = "import time; time.sleep(60)"
    clickhouse = subprocess.Popen(
        [sys.executable, "-c", sleeper, "promptline.devstack.chdb_server", "--port", "38123"]
    )
    broker = subprocess.Popen(
        [sys.executable, "-c", sleeper, "tansu", "--listener-url", "tcp://127.0.0.1:39092"]
    )
    try:
        found = local_service_pids(
            Settings(
                clickhouse_url="http://127.0.0.1:38123",
                kafka_bootstrap_servers="127.0.0.1:39092",
            )
        )
        assert found == {"ClickHouse server": clickhouse.pid, "broker": broker.pid}
        elsewhere = Settings(
            clickhouse_url="http://127.0.0.1:38124", kafka_bootstrap_servers="127.0.0.1:39093"
        )
        assert local_service_pids(elsewhere) == {}
    finally:
        for process in (clickhouse, broker):
            process.kill()
            process.wait()
