"""Leasing this process's signal-id node number from the control-plane store.

One round trip at start and one every third of the lease's life, never per signal. A
process takes a number nobody has held, or one whose lease expired (compare-and-swap on
holder and expiry, so two processes cannot both win it), renews it in the background,
and on shutdown hands it back by setting its expiry to the end of its last id's tick.
If renewals fail until the lease runs out, the generator stops issuing ids (signals get
503) rather than risk a duplicate; the next successful renewal or acquisition resumes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import EdgeNodeLease
from ingest.signal_ids import NODE_COUNT, Lease
from promptline.periodic import cancel_and_wait

log = logging.getLogger(__name__)

ACQUIRE_ATTEMPTS = 8
RETRY_SECONDS = 1.0


class NoNodeAvailable(Exception):
    """Every node number is held by a live process."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class NodeLease:
    """Holds one node number for this process while it runs."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl_ms = int(ttl_seconds * 1000)
        self._holder = uuid.uuid4()
        self._task: asyncio.Task[None] | None = None
        self.current: Lease | None = None

    async def start(self) -> None:
        """Acquire a number now (fails loudly if the store is down), then keep it renewed."""
        self.current = await self._acquire()
        log.info("holding signal-id node %d", self.current.node_id)
        self._task = asyncio.create_task(self._keep(), name="edge-node-lease")

    async def stop(self, issued_until_ms: int) -> None:
        """Stop renewing and release the number: it expires when our last id's tick ends."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        lease, self.current = self.current, None
        if lease is None:
            return
        release_at = min(lease.expires_ms, max(_now_ms(), issued_until_ms))
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(EdgeNodeLease)
                    .where(
                        EdgeNodeLease.node_id == lease.node_id,
                        EdgeNodeLease.holder == self._holder,
                    )
                    .values(expires_ms=release_at)
                )
        except Exception:
            log.warning("could not release node %d; it frees itself on expiry", lease.node_id)

    async def _keep(self) -> None:
        while True:
            lease = self.current
            wait = self._ttl_ms / 3000 if lease is not None else RETRY_SECONDS
            await asyncio.sleep(wait)
            try:
                if lease is not None and await self._renew(lease):
                    continue
                if lease is not None:
                    log.warning("lost signal-id node %d; acquiring another", lease.node_id)
                self.current = await self._acquire()
                log.info("holding signal-id node %d", self.current.node_id)
            except Exception:
                log.exception("signal-id node lease renewal failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)

    async def _renew(self, lease: Lease) -> bool:
        """Extend our lease; False if another process took the number after it expired."""
        expires = _now_ms() + self._ttl_ms
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(EdgeNodeLease)
                .where(
                    EdgeNodeLease.node_id == lease.node_id,
                    EdgeNodeLease.holder == self._holder,
                )
                .values(expires_ms=expires)
            )
        if getattr(result, "rowcount", 0) != 1:
            self.current = None
            return False
        self.current = Lease(lease.node_id, lease.floor_ms, expires)
        return True

    async def _acquire(self) -> Lease:
        for _attempt in range(ACQUIRE_ATTEMPTS):
            try:
                lease = await self._try_acquire()
            except IntegrityError:
                continue  # another process inserted the same number first
            if lease is not None:
                return lease
        raise NoNodeAvailable(f"no free signal-id node number after {ACQUIRE_ATTEMPTS} tries")

    async def _try_acquire(self) -> Lease | None:
        now = _now_ms()
        expires = now + self._ttl_ms
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(EdgeNodeLease.node_id, EdgeNodeLease.holder, EdgeNodeLease.expires_ms)
                )
            ).all()
            held = {row.node_id for row in rows}
            never_used = [number for number in range(NODE_COUNT) if number not in held]
            if never_used:
                number = random.choice(never_used)
                await session.execute(
                    insert(EdgeNodeLease).values(
                        node_id=number, holder=self._holder, expires_ms=expires
                    )
                )
                return Lease(number, 0, expires)
            expired = [row for row in rows if row.expires_ms <= now]
            if not expired:
                raise NoNodeAvailable(f"all {NODE_COUNT} signal-id node numbers are held")
            row = random.choice(expired)
            result = await session.execute(
                update(EdgeNodeLease)
                .where(
                    EdgeNodeLease.node_id == row.node_id,
                    EdgeNodeLease.holder == row.holder,
                    EdgeNodeLease.expires_ms == row.expires_ms,
                )
                .values(holder=self._holder, expires_ms=expires)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            return Lease(row.node_id, int(row.expires_ms), expires)
