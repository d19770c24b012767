"""A worker's ``/metrics``: lag, oldest unstored record, failures, dead letters, hold, health."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import aiohttp
import pytest
from aiokafka import TopicPartition
from prometheus_client import generate_latest

from promptline.devstack.services import free_port
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import Tenant, analytics, command, produce, wait_until
from tests.workers.outage import clickhouse_relay
from tests.workers.status import (
    Samples,
    by_label,
    metrics,
    parse_samples,
    running_worker,
    value,
)
from tests.workers.test_progress import Clock
from workers.coordinator import WorkerStats
from workers.metrics import WorkerCollector, WorkerMetrics
from workers.progress import Hold, Progress

HASH = "sha256:" + "6" * 64
A = TopicPartition("promptline.analytics.v1", 0)
B = TopicPartition("promptline.signals.v1", 2)


def _scrape(progress: Progress, stats: WorkerStats, wall_seconds: float) -> Samples:
    collector = WorkerCollector(progress, stats, stall_seconds=60, wall_clock=lambda: wall_seconds)
    return parse_samples(generate_latest(WorkerMetrics(collector).registry).decode())


def test_every_family_is_read_from_the_progress_and_counters_at_scrape_time() -> None:
    clock = Clock()
    progress, stats = Progress(clock), WorkerStats(rows_written=40, duplicates_dropped=3)
    progress.assigned([A, B])
    progress.committed({A: 100, B: 7})
    progress.highwater(A, 130)
    progress.read(A, 120, first_timestamp_ms=1_700_000_000_000)
    for label in ("unreachable", "unreachable", "encoding"):
        progress.insert_failed(label)
    progress.dead_lettered(2)
    progress.wait(Hold.UNREACHABLE, "OperationalError: connection refused")
    clock.now += 90

    samples = _scrape(progress, stats, wall_seconds=1_700_000_012.5)
    lag = by_label(samples, "promptline_worker_consumer_lag", "topic")
    assert lag == {A.topic: 30}  # B: nothing fetched yet, so no end to measure from
    assert value(
        samples, "promptline_worker_oldest_unstored_age_seconds", topic=A.topic, partition="0"
    ) == pytest.approx(12.5)
    assert (
        value(
            samples, "promptline_worker_oldest_unstored_age_seconds", topic=B.topic, partition="2"
        )
        == 0
    )
    assert by_label(samples, "promptline_worker_insert_failures_total", "reason") == {
        "unreachable": 2,
        "encoding": 1,
    }
    assert value(samples, "promptline_worker_dead_letters_total") == 2
    assert value(samples, "promptline_worker_rows_written_total") == 40
    assert value(samples, "promptline_worker_duplicates_dropped_total") == 3
    assert value(samples, "promptline_worker_blocks_recovered_total") == 0
    assert by_label(samples, "promptline_worker_held", "hold") == {
        "clickhouse_unreachable": 1,
        "stuck_on_block": 0,
    }
    assert by_label(samples, "promptline_worker_held_seconds", "hold") == {
        "clickhouse_unreachable": 90,
        "stuck_on_block": 0,
    }
    assert value(samples, "promptline_worker_healthy") == 0

    progress.stored()
    progress.committed({A: 120})
    samples = _scrape(progress, stats, wall_seconds=1_700_000_020.0)
    assert by_label(samples, "promptline_worker_consumer_lag", "topic") == {A.topic: 10}
    assert by_label(samples, "promptline_worker_held", "hold")["clickhouse_unreachable"] == 0
    assert value(samples, "promptline_worker_healthy") == 1


def test_each_worker_has_a_registry_of_its_own() -> None:
    first, second = Progress(), Progress()
    first.insert_failed("unreachable")
    samples = [_scrape(progress, WorkerStats(), 0.0) for progress in (first, second)]
    failures = "promptline_worker_insert_failures_total"
    assert [by_label(found, failures, "reason") for found in samples] == [{"unreachable": 1}, {}]


async def test_the_exposition_adds_the_process_metrics() -> None:
    collector = WorkerCollector(Progress(), WorkerStats(), stall_seconds=60)
    samples = parse_samples((await WorkerMetrics(collector).exposition()).decode())
    assert value(samples, "promptline_worker_healthy") == 1
    assert any(name == "process_cpu_seconds_total" for name, _labels in samples)


def _lags(samples: Samples, topic: str) -> dict[str, float]:
    """The topic's consumer lag by partition (partitions with a known committed offset)."""
    return {
        dict(labels)["partition"]: found
        for (name, labels), found in samples.items()
        if name == "promptline_worker_consumer_lag" and dict(labels)["topic"] == topic
    }


def _lag(samples: Samples, topic: str) -> float | None:
    lags = _lags(samples, topic)
    return sum(lags.values()) if lags else None


def _age(samples: Samples, topic: str) -> float:
    """The age of the topic's oldest unstored record."""
    return max(
        (
            found
            for (name, labels), found in samples.items()
            if name == "promptline_worker_oldest_unstored_age_seconds"
            and dict(labels)["topic"] == topic
        ),
        default=0.0,
    )


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_a_worker_counts_lag_from_the_offsets_committed_before_it_started(
    migrated: Settings,
) -> None:
    """Records sent while no worker runs are lag as soon as the next worker is assigned their
    partition, before it stores anything (here it cannot: the hourly aggregate refuses all)."""
    tenant, prompt = Tenant(), uuid.uuid4()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS)
    settings = migrated.model_copy(update={"worker_http_port": free_port()})
    async with running_worker(settings):
        await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(3)])
        await wait_until(
            lambda: _when(settings, lambda s: _rows(s) == 3 and _lag(s, topic) == 0),
            "the first three stored and committed",
        )
    await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(7)])
    await command(settings, "ALTER TABLE analytics_hourly ADD CONSTRAINT down CHECK events = 0")
    async with running_worker(settings):
        held = await wait_until(
            lambda: _when(
                settings, lambda s: _lag(s, topic) == 7 and _held(s, "stuck_on_block") == 1
            ),
            "seven records behind the offset the first worker committed",
        )
        assert _rows(held) == 0 and _age(held, topic) > 0
        await command(settings, "ALTER TABLE analytics_hourly DROP CONSTRAINT down")
        await wait_until(
            lambda: _when(settings, lambda s: _rows(s) == 7 and _lag(s, topic) == 0),
            "the seven stored once the table takes rows again",
        )


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_a_refused_record_counts_an_insert_failure_by_reason_and_a_dead_letter(
    migrated: Settings,
) -> None:
    await command(
        migrated,
        "ALTER TABLE analytics_events ADD CONSTRAINT fast CHECK ifNull(latency_ms, 0) < 1000",
    )
    settings = migrated.model_copy(update={"worker_http_port": free_port()})
    tenant, prompt = Tenant(), uuid.uuid4()
    latencies = (1.0, 5000.0, 2.0)
    async with running_worker(settings):
        await produce(settings, [analytics(tenant, prompt, HASH, latency=ms) for ms in latencies])
        samples = await wait_until(
            lambda: _when(settings, lambda s: _rows(s) == 2), "the two fast events stored"
        )
    assert value(samples, "promptline_worker_dead_letters_total") == 1
    failures = by_label(samples, "promptline_worker_insert_failures_total", "reason")
    assert failures.get("unreachable", 0) == 0
    assert sum(failures.values()) >= 1  # the block, then the halves holding the slow event


async def _when(settings: Settings, check: Callable[[Samples], bool]) -> Samples | None:
    """The worker's metrics once it serves them and ``check`` holds of them; for ``wait_until``."""
    try:
        samples = await metrics(settings)
    except aiohttp.ClientError:
        return None
    return samples if check(samples) else None


def _held(samples: Samples, hold: str = "clickhouse_unreachable") -> float:
    return by_label(samples, "promptline_worker_held", "hold")[hold]


def _rows(samples: Samples) -> float | None:
    return value(samples, "promptline_worker_rows_written_total")


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_lag_grows_while_the_worker_is_held_and_returns_to_zero_once_stored(
    migrated: Settings,
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()  # one prompt: every record on one partition
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS)
    async with clickhouse_relay(migrated) as relay:
        settings = migrated.model_copy(
            update={"clickhouse_url": relay.url(), "worker_http_port": free_port()}
        )
        async with running_worker(settings):
            await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(3)])
            stored = await wait_until(
                lambda: _when(settings, lambda s: _rows(s) == 3 and _lag(s, topic) == 0),
                "the first three stored and committed",
            )
            (partition,) = _lags(stored, topic)

            relay.switch_off()
            await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(7)])
            held = await wait_until(
                lambda: _when(settings, lambda s: _lag(s, topic) == 7 and _held(s) == 1),
                "seven records behind the committed offset, the worker held",
            )
            assert _lags(held, topic) == {partition: 7}
            assert _age(held, topic) > 0
            assert (
                by_label(held, "promptline_worker_held_seconds", "hold")["clickhouse_unreachable"]
                > 0
            )

            relay.switch_on()
            done = await wait_until(
                lambda: _when(
                    settings,
                    lambda s: _rows(s) == 10 and _lag(s, topic) == 0 and _age(s, topic) == 0,
                ),
                "all ten stored, nothing behind",
            )
            assert _held(done) == 0
            assert value(done, "promptline_worker_dead_letters_total") == 0

            await produce(settings, [(topic, b"key", b"not json")])
            poisoned = await wait_until(
                lambda: _when(
                    settings, lambda s: value(s, "promptline_worker_dead_letters_total") == 1
                ),
                "the poison record dead-lettered",
            )
            assert value(poisoned, "promptline_worker_rows_written_total") == 10
