"""A worker's account of its progress, and the health verdict on it, with a clock the test sets."""

from __future__ import annotations

from aiokafka import TopicPartition

from workers.health import NO_PROGRESS, assess
from workers.progress import Hold, Progress

A = TopicPartition("promptline.analytics.v1", 0)
B = TopicPartition("promptline.analytics.v1", 1)
STALL = 60.0


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _worker_with(clock: Clock) -> Progress:
    progress = Progress(clock)
    progress.assigned([A, B])
    progress.committed({A: 100, B: 40})
    return progress


def test_a_partition_with_nothing_waiting_is_healthy_however_long_it_is_idle() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.highwater(A, 100)
    clock.now += 10 * STALL
    assert assess(progress, STALL).healthy


def test_records_read_and_not_committed_past_the_stall_make_the_worker_unhealthy() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    clock.now += 10 * STALL  # idle before the records came: not counted
    progress.read(A, 150, first_timestamp_ms=5_000)
    clock.now += STALL
    assert assess(progress, STALL).healthy
    clock.now += 1
    health = assess(progress, STALL)
    assert not health.healthy
    assert health.hold == NO_PROGRESS
    assert "no committed progress for 61s on 1 partition(s)" in str(health.reason)
    assert [p.as_dict() for p in health.partitions] == [
        {
            "topic": A.topic,
            "partition": 0,
            "committed": 100,
            "end": 150,
            "stalled_seconds": 61.0,
        }
    ]


def test_records_at_the_broker_count_as_waiting_though_not_read() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.highwater(B, 45)
    clock.now += STALL + 1
    health = assess(progress, STALL)
    assert not health.healthy
    assert [(p.tp, p.committed, p.end) for p in health.partitions] == [(B, 40, 45)]


def test_committed_progress_restarts_the_count_and_a_commit_of_all_ends_it() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 200, first_timestamp_ms=5_000)
    clock.now += STALL - 1
    progress.committed({A: 150})  # part of it: still waiting, but progress was made
    clock.now += STALL - 1
    assert assess(progress, STALL).healthy
    clock.now += 2
    assert not assess(progress, STALL).healthy
    progress.committed({A: 200})
    clock.now += 10 * STALL
    assert assess(progress, STALL).healthy


def test_the_fence_commits_the_same_offset_and_is_no_progress() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 120, first_timestamp_ms=5_000)
    clock.now += STALL
    progress.committed({A: 100})
    clock.now += 1
    assert not assess(progress, STALL).healthy


def test_a_batch_read_again_still_waits() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 120, first_timestamp_ms=5_000)
    clock.now += STALL / 2
    progress.rewound(A)
    progress.read(A, 120, first_timestamp_ms=5_000)
    clock.now += STALL / 2 + 1
    assert not assess(progress, STALL).healthy
    assert progress.partitions[A].oldest_unstored_ms == 5_000


def test_the_reason_tells_unreachable_from_stuck_and_recovery_clears_it() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 120, first_timestamp_ms=5_000)
    progress.wait(Hold.UNREACHABLE, "OperationalError: connection refused")
    clock.now += STALL + 1
    progress.wait(Hold.UNREACHABLE, "OperationalError: timed out")  # the same wait goes on
    health = assess(progress, STALL)
    assert (health.hold, health.reason) == (
        "clickhouse_unreachable",
        "ClickHouse unreachable, waiting for 61s: OperationalError: timed out",
    )

    progress.reached()
    progress.wait(Hold.STUCK, "DatabaseError: Table promptline.analytics_hourly does not exist")
    health = assess(progress, STALL)
    assert health.hold == "stuck_on_block"
    assert str(health.reason).startswith("stuck on a block for 0.0s: ClickHouse refuses it whole")
    assert str(health.reason).endswith("analytics_hourly does not exist")
    assert [p.tp for p in health.partitions] == [A]

    progress.reached()  # a lookup answered: ClickHouse is reachable, the block still refused
    assert assess(progress, STALL).hold == "stuck_on_block"
    progress.stored()
    progress.committed({A: 120})
    assert assess(progress, STALL).healthy
    assert progress.waiting is None


def test_waiting_on_clickhouse_past_the_stall_is_unhealthy_before_anything_was_read() -> None:
    """Recovering a previous owner's block happens before the first read."""
    clock = Clock()
    progress = _worker_with(clock)
    progress.wait(Hold.UNREACHABLE, "OperationalError: connection refused")
    clock.now += STALL + 1
    health = assess(progress, STALL)
    assert (health.healthy, health.hold, health.partitions) == (
        False,
        "clickhouse_unreachable",
        [],
    )


def test_a_completed_flush_ends_the_hold_even_without_an_insert() -> None:
    """A batch of duplicates only is committed without inserting anything."""
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 120, first_timestamp_ms=5_000)
    progress.wait(Hold.UNREACHABLE, "OperationalError: connection refused")
    progress.committed({A: 120})
    assert progress.waiting is None


def test_lag_and_the_oldest_unstored_record_follow_reads_and_commits() -> None:
    progress = _worker_with(Clock())
    assert progress.partitions[A].lag is None  # no fetch yet: the end is unknown
    progress.highwater(A, 130)
    progress.read(A, 110, first_timestamp_ms=5_000)
    progress.read(A, 125, first_timestamp_ms=6_000)
    state = progress.partitions[A]
    assert (state.lag, state.oldest_unstored_ms) == (30, 5_000)
    progress.committed({A: 110})
    assert (state.lag, state.oldest_unstored_ms) == (20, 6_000)
    progress.committed({A: 125})
    assert (state.lag, state.oldest_unstored_ms) == (5, None)
    progress.read(A, 140, first_timestamp_ms=7_000)  # past the last fetch's high-water mark
    assert state.lag == 15


def test_a_commit_that_moves_back_starts_the_account_again() -> None:
    """A recreated topic starts its offsets at 0 again."""
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 500, first_timestamp_ms=5_000)
    progress.committed({A: 500})
    progress.committed({A: 0})
    clock.now += 10 * STALL
    assert progress.partitions[A].lag is None
    assert assess(progress, STALL).healthy


def test_revoked_partitions_are_no_longer_reported() -> None:
    clock = Clock()
    progress = _worker_with(clock)
    progress.read(A, 120, first_timestamp_ms=5_000)
    progress.revoked([A])
    clock.now += 10 * STALL
    assert assess(progress, STALL).healthy
    assert set(progress.partitions) == {B}


def test_failures_and_dead_letters_are_counted() -> None:
    progress = Progress()
    for label in ("unreachable", "unreachable", "VIOLATED_CONSTRAINT"):
        progress.insert_failed(label)
    progress.dead_lettered(3)
    progress.dead_lettered(2)
    assert progress.insert_failures == {"unreachable": 2, "VIOLATED_CONSTRAINT": 1}
    assert progress.dead_letters == 5
