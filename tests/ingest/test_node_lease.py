"""Leasing signal-id node numbers from the store: one holder each, handed over safely."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import EdgeNodeLease
from ingest.node_lease import NodeLease
from ingest.signal_ids import Lease, SignalIdGenerator, SignalIdsUnavailable, decompose


def _held(lease: NodeLease) -> Lease | None:
    return lease.current


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    async with sessions() as session:
        result = await session.execute(select(EdgeNodeLease.node_id, EdgeNodeLease.expires_ms))
        return {node_id: expires for node_id, expires in result.all()}


async def test_live_processes_hold_distinct_numbers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    leases = [NodeLease(sessions, ttl_seconds=30) for _ in range(20)]
    for lease in leases:
        await lease.start()
    try:
        numbers = [lease.current.node_id for lease in leases if lease.current is not None]
        assert len(set(numbers)) == 20
        rows = await _rows(sessions)
        assert set(rows) == set(numbers)
        assert all(expires > _now_ms() + 20_000 for expires in rows.values())
    finally:
        for lease in leases:
            await lease.stop(0)


async def test_stop_hands_the_number_back_at_the_end_of_the_last_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    lease = NodeLease(sessions, ttl_seconds=30)
    await lease.start()
    assert lease.current is not None
    number = lease.current.node_id
    generator = SignalIdGenerator(lease)
    generator.next_id()
    await lease.stop(generator.issued_until_ms)
    assert _held(lease) is None
    released = (await _rows(sessions))[number]
    assert generator.issued_until_ms <= released <= max(_now_ms(), generator.issued_until_ms)


async def test_an_expired_number_is_taken_over_with_its_expiry_as_the_floor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = NodeLease(sessions, ttl_seconds=30)
    await first.start()
    # Every other number is held by someone alive, so the newcomer must take first's.
    async with sessions() as session, session.begin():
        held = _now_ms() + 60_000
        for number in range(256):
            if first.current is not None and number != first.current.node_id:
                session.add(EdgeNodeLease(node_id=number, holder=first._holder, expires_ms=held))
    assert first.current is not None
    number = first.current.node_id
    old_ids = SignalIdGenerator(first)
    last_old = old_ids.next_id()
    # first's renewals stall and its lease runs out right after its last id's tick.
    expired_at = old_ids.issued_until_ms
    async with sessions() as session, session.begin():
        await session.execute(
            update(EdgeNodeLease)
            .where(EdgeNodeLease.node_id == number)
            .values(expires_ms=expired_at)
        )
    first.current = Lease(number, first.current.floor_ms, expired_at)
    await asyncio.sleep(0.03)
    with pytest.raises(SignalIdsUnavailable):
        old_ids.next_id()
    second = NodeLease(sessions, ttl_seconds=30)
    await second.start()
    try:
        assert second.current is not None
        assert second.current.node_id == number
        assert second.current.floor_ms == expired_at
        new_id = SignalIdGenerator(second).next_id()
        assert decompose(new_id)[1] == number
        assert decompose(new_id)[0] > decompose(last_old)[0]
        # first learns at its next renewal that it lost the number
        assert first.current is not None
        assert not await first._renew(first.current)
        assert _held(first) is None
    finally:
        await second.stop(0)
        await first.stop(0)
