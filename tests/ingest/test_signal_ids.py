"""Signal ids: 53 bits, unique, time-ordered, and never repeated across lease changes."""

from __future__ import annotations

import time

import pytest

from ingest.signal_ids import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_SIGNAL_ID,
    TICK_MS,
    Lease,
    SignalIdGenerator,
    SignalIdsUnavailable,
    StaticLease,
    decompose,
    tick_of,
)


class Leases:
    def __init__(self, lease: Lease | None) -> None:
        self.current = lease


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_ids_fit_javascript_numbers_and_carry_time_node_and_sequence() -> None:
    assert MAX_SIGNAL_ID == 2**53 - 1
    before = tick_of(_now_ms())
    signal_id = SignalIdGenerator(StaticLease(7)).next_id()
    tick, node, sequence = decompose(signal_id)
    assert 0 < signal_id <= MAX_SIGNAL_ID
    assert node == 7 and sequence == 0
    assert before <= tick <= tick_of(_now_ms()) + 1


def test_a_burst_borrows_ticks_and_stays_unique_and_increasing() -> None:
    generator = SignalIdGenerator(StaticLease(1))
    ids = [generator.next_id() for _ in range(5 * (MAX_SEQUENCE + 1))]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    sequences = {decompose(signal_id)[2] for signal_id in ids}
    assert max(sequences) == MAX_SEQUENCE


def test_two_nodes_never_collide_even_in_the_same_tick() -> None:
    first, second = SignalIdGenerator(StaticLease(1)), SignalIdGenerator(StaticLease(2))
    ids = [generator.next_id() for _ in range(1000) for generator in (first, second)]
    assert len(set(ids)) == len(ids)


def test_no_lease_or_an_expired_lease_issues_nothing() -> None:
    with pytest.raises(SignalIdsUnavailable):
        SignalIdGenerator(Leases(None)).next_id()
    expired = Lease(3, 0, _now_ms() - 1)
    with pytest.raises(SignalIdsUnavailable):
        SignalIdGenerator(Leases(expired)).next_id()


def test_a_taken_over_number_starts_after_the_previous_holders_expiry() -> None:
    floor = _now_ms() + 5_000  # the previous holder's clock ran ahead of ours
    leases = Leases(Lease(4, floor, floor + 60_000))
    tick, node, _sequence = decompose(SignalIdGenerator(leases).next_id())
    assert node == 4
    assert tick * TICK_MS + EPOCH_MS >= floor


def test_renewal_keeps_the_sequence_and_reacquiring_a_number_moves_to_a_new_tick() -> None:
    now = _now_ms()
    leases = Leases(Lease(5, 0, now + 60_000))
    generator = SignalIdGenerator(leases)
    ids = [generator.next_id() for _ in range(10)]
    leases.current = Lease(5, 0, now + 120_000)  # renewed: same number, same floor
    ids += [generator.next_id() for _ in range(10)]
    leases.current = Lease(5, now, now + 120_000)  # lost and taken again: new floor
    ids += [generator.next_id() for _ in range(10)]
    leases.current = Lease(6, 0, now + 120_000)  # another number altogether
    ids += [generator.next_id() for _ in range(10)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert decompose(ids[20])[0] > decompose(ids[19])[0]
    assert decompose(ids[30])[0] > decompose(ids[29])[0]
    assert generator.issued_until_ms > now


def test_static_lease_refuses_out_of_range_numbers() -> None:
    with pytest.raises(ValueError, match="node id"):
        StaticLease(256)
