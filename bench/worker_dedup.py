"""Worker benchmark: does the duplicate lookup's cost grow with the traffic already stored?

``python -m bench.worker_dedup [--events N] [--stored S] [--prompts P] [--rounds R]
[--batch-rows B] [--use-env] [--json PATH]``

In the same run, against the same broker and ClickHouse, it times one worker process
(``bench.worker_throughput``'s measure: from the first stored row to the last commit) on the
same kind of batch (N records, 80% analytics, 5% client retries, UUIDv7 event ids, over P
prompts with Zipf's shares) twice: into an empty warehouse, and into one that already
holds S analytics events of the same prompts and shares, spread over the week before (the
lookback window), with the same kinds of keys. Each phase has its own topics, group and
database. Before the stored phase's worker starts, ClickHouse's merges of that bulk load are
waited for, as in a warehouse that has been running. The ratio of the two rates is the
price of the stored traffic (the issue's target: within 10%); worker CPU per event is
printed beside it, steadier than a rate on a shared machine. With ``--rounds`` above 1 the
phases alternate, and the ratio is the median of the rounds'.
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from pathlib import Path

from bench.figures import figure, write_json
from bench.ui_compare import settled
from bench.worker_throughput import (
    WorkerRun,
    load,
    load_average,
    print_run,
    records,
    store_history,
    time_workers,
    worker_options,
    worker_settings,
)
from promptline.commands.migrate import run_migrations
from promptline.settings import Settings


def phase_settings(settings: Settings, name: str) -> Settings:
    """Topics, group and database of one phase's own, on the same services."""
    tag = f"{name}_{uuid.uuid4().hex[:6]}"
    return settings.model_copy(
        update={
            "kafka_topic_prefix": f"{settings.kafka_topic_prefix}{tag}.",
            "kafka_consumer_group": f"{settings.kafka_consumer_group}-{tag}",
            "clickhouse_database": f"{settings.clickhouse_database}_{tag}",
        }
    )


async def phase(settings: Settings, events: int, prompts: int, stored: int) -> WorkerRun:
    """One worker over a fresh batch, with ``stored`` events in the warehouse before it."""
    await run_migrations(settings, ("clickhouse", "kafka"))
    batch = records(events, prompts=prompts, zipf=True)
    if stored:
        seconds = await store_history(settings, batch, stored)
        print(f"stored {stored:,} analytics events over the week before in {seconds:.1f}s")
        _events, waited = await settled(settings)
        print(f"merges of that bulk load settled in {waited:.1f}s")
    await load(settings, batch)
    print(f"load average before the worker: {load_average()}")
    run = await time_workers(settings, events, 1)
    print_run(settings, 1, run)
    return run


async def run(
    settings: Settings, events: int, prompts: int, stored: int, rounds: int, json_path: Path | None
) -> None:
    print(f"load average: {load_average()}")
    empty: list[WorkerRun] = []
    full: list[WorkerRun] = []
    for round_ in range(rounds):
        order = [("empty", 0), ("stored", stored)]
        for name, count in order if round_ % 2 == 0 else reversed(order):
            print(f"\n-- round {round_ + 1}: {name} warehouse ({count:,} events stored)")
            made = await phase(phase_settings(settings, name), events, prompts, count)
            (empty if count == 0 else full).append(made)
    ratios = [f.rate / e.rate for e, f in zip(empty, full, strict=True)]
    ratio = statistics.median(ratios)
    empty_rate = statistics.median(e.rate for e in empty)
    full_rate = statistics.median(f.rate for f in full)
    print(f"\nload average: {load_average()}")
    print(f"empty warehouse: {empty_rate:,.0f} events/s")
    print(f"{stored:,} stored: {full_rate:,.0f} events/s")
    print(f"stored / empty: {ratio:.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)})")
    full_cpu = statistics.median(f.cpu_us for f in full)
    empty_cpu = statistics.median(e.cpu_us for e in empty)
    print(f"worker CPU: {full_cpu:.1f} us/event stored, {empty_cpu:.1f} empty")
    write_json(
        json_path,
        "worker_dedup",
        [
            figure(
                f"worker events/s, {stored:,} stored vs empty",
                full_rate,
                "events/s",
                empty_rate,
                ratio,
            ),
            figure(f"worker CPU per event, {stored:,} stored vs empty", full_cpu, "us", empty_cpu),
        ],
    )


def main() -> None:
    parser = worker_options("python -m bench.worker_dedup", stored=10_000_000)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with worker_settings(args) as settings:
        asyncio.run(run(settings, args.events, args.prompts, args.stored, args.rounds, args.json))


if __name__ == "__main__":
    main()
