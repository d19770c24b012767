"""One active guard however many run: a lease row in the store, taken by compare-and-swap.

A guard acts only while it holds the lease: it renews it before every round (one UPDATE
that succeeds only for the holder or once the lease has expired), and a round that outlives
its lease stops before its next action. Another guard takes over at most a lease's life
after the holder dies, so running two (for availability) never doubles a decision.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import GuardLease

LEASE_NAME = "guard"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Lease:
    """This process's claim on the guard's lease."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl_ms = int(ttl_seconds * 1000)
        self.holder = uuid.uuid4()
        self._until_ms = 0

    @property
    def held(self) -> bool:
        """Whether the lease is ours now (with a second to spare for clocks and the store)."""
        return _now_ms() + 1_000 < self._until_ms

    async def renew(self) -> bool:
        """Take or extend the lease; whether this process holds it now."""
        now = _now_ms()
        until = now + self._ttl_ms
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(GuardLease)
                .where(
                    GuardLease.name == LEASE_NAME,
                    or_(GuardLease.holder == self.holder, GuardLease.expires_ms < now),
                )
                .values(holder=self.holder, expires_ms=until)
            )
            taken = bool(getattr(result, "rowcount", 0))
        if not taken:
            taken = await self._create(until)
        self._until_ms = until if taken else 0
        return taken

    async def _create(self, until: int) -> bool:
        """The very first guard creates the row; a race for it is lost by all but one."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(GuardLease(name=LEASE_NAME, holder=self.holder, expires_ms=until))
        except IntegrityError:
            return False
        return True

    async def release(self) -> None:
        """Let another guard take over at once (on a clean stop)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(GuardLease)
                .where(GuardLease.name == LEASE_NAME, GuardLease.holder == self.holder)
                .values(expires_ms=0)
            )
        self._until_ms = 0
