"""The monthly signal quota, counted in the control-plane store: exact across processes.

One row per (organisation, month). A reservation is one conditional ``UPDATE``::

    SET used = CASE WHEN used + :n <= :limit THEN used + :n ELSE :limit END,
        last_grant = CASE WHEN used + :n <= :limit THEN :n ELSE :limit - used END
    WHERE org_id = :org AND month = :month AND used < :limit
    RETURNING last_grant

``SET`` expressions read the row as it was, and the database serializes updates of one
row (PostgreSQL row lock, SQLite's single writer), so however many processes race,
``used`` never passes the limit and each statement learns exactly what it got.

Keyed signals are remembered in the same transaction (``signal_idempotency_keys``,
``ingest.quota_claims``): before the ``UPDATE``, one ``INSERT ... ON CONFLICT DO UPDATE
SET repeats = repeats + 1 RETURNING ...`` offers every key of the group; a row that comes
back with another signal's id was charged before, so that claim is a repeat and is not
counted in ``:n``; keys that then go over the limit are deleted again before the commit.
Two requests with one key race on the key's unique index: the second waits for the
first's transaction and then sees its row, so the key is charged once. Rows are written
in key order and before the counter's row, so concurrent groups cannot deadlock.

Requests are *coalesced*: while one statement for an organisation is in flight, the
reservations that arrive queue up and the next statement reserves them all at once,
handing units out first come, first served. At low load this adds no wait; under load
it turns thousands of signals a second into a few statements a second.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import SignalQuotaUsage
from ingest.quota import QuotaUnavailable
from ingest.quota_claims import ClaimPlan, Grant, KeyedSignal, first_claims, split_charged
from ingest.signal_key_rows import dialect_insert, forget_keys, offer_keys

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Want:
    claims: Sequence[KeyedSignal | None]
    limit: int
    granted: asyncio.Future[list[Grant]]


@dataclass(slots=True)
class _Queue:
    waiting: list[_Want] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class StoreQuota:
    """Reserves and releases quota units with one transaction per coalesced group."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._queues: dict[tuple[uuid.UUID, str], _Queue] = {}
        self._rows: set[tuple[uuid.UUID, str]] = set()

    async def reserve(
        self, org_id: uuid.UUID, month: str, limit: int, claims: Sequence[KeyedSignal | None]
    ) -> list[Grant]:
        """Charge the claims below ``limit``, first come first served; one grant each."""
        if not claims:
            return []
        key = (org_id, month)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        want = _Want(claims, limit, asyncio.get_running_loop().create_future())
        queue.waiting.append(want)
        if queue.task is None:
            queue.task = asyncio.create_task(self._drain(key, queue), name="signal-quota")
        return await want.granted

    async def release(
        self, org_id: uuid.UUID, month: str, count: int, keyed: Sequence[KeyedSignal] = ()
    ) -> None:
        """Give back units of signals Kafka did not take; their keys are forgotten.

        A key a retry was answered with meanwhile is kept, and so is its unit (the retry's
        record may be in Kafka).
        """
        if count <= 0 and not keyed:
            return
        async with self._sessions() as session, session.begin():
            count += await forget_keys(session, org_id, month, keyed, unless_repeated=True)
            if count > 0:
                await _give_back(session, org_id, month, count)

    async def _drain(self, key: tuple[uuid.UUID, str], queue: _Queue) -> None:
        try:
            while queue.waiting:
                group, queue.waiting = queue.waiting, []
                await self._serve(key, group)
        finally:
            queue.task = None
            for want in queue.waiting:  # only if this task was cancelled mid-way
                if not want.granted.done():
                    want.granted.set_exception(QuotaUnavailable("quota counter stopped"))
            queue.waiting.clear()
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _serve(self, key: tuple[uuid.UUID, str], group: list[_Want]) -> None:
        claims = [claim for want in group for claim in want.claims]
        try:
            grants = await self._grant(key, group[-1].limit, claims)
        except Exception as error:
            log.warning("signal quota counter failed: %r", error)
            for want in group:
                if not want.granted.done():
                    want.granted.set_exception(QuotaUnavailable(str(error)))
            return
        abandoned_count, abandoned_keys = 0, []
        start = 0
        for want in group:
            mine = grants[start : start + len(want.claims)]
            start += len(want.claims)
            if want.granted.done():  # the request went away while waiting
                count, keyed = split_charged(want.claims, mine)
                abandoned_count += count
                abandoned_keys.extend(keyed)
            else:
                want.granted.set_result(mine)
        if abandoned_count or abandoned_keys:
            try:
                await self.release(key[0], key[1], abandoned_count, abandoned_keys)
            except Exception:
                log.exception("could not give back abandoned signal units")

    async def _grant(
        self, key: tuple[uuid.UUID, str], limit: int, claims: Sequence[KeyedSignal | None]
    ) -> list[Grant]:
        """One transaction: offer the keys, charge what is chargeable, drop refused keys."""
        org_id, month = key
        firsts = first_claims(claims)
        async with self._sessions() as session, session.begin():
            if key not in self._rows:
                await session.execute(_insert_missing(session, org_id, month))
            remembered = await offer_keys(session, org_id, month, firsts)
            plan = ClaimPlan(claims, remembered)
            granted = 0
            if plan.chargeable and limit > 0:
                granted = await _charge(session, org_id, month, limit, plan.chargeable)
            grants = plan.grants(granted)
            refused = plan.refused_keys(grants)
            if refused:
                await forget_keys(session, org_id, month, refused, unless_repeated=False)
        self._rows.add(key)
        return grants


async def _charge(
    session: AsyncSession, org_id: uuid.UUID, month: str, limit: int, count: int
) -> int:
    """The conditional ``UPDATE``: how many of ``count`` units fit below ``limit``."""
    used = SignalQuotaUsage.used
    fits = used + count <= limit
    result = await session.execute(
        update(SignalQuotaUsage)
        .where(SignalQuotaUsage.org_id == org_id, SignalQuotaUsage.month == month, used < limit)
        .values(
            used=case((fits, used + count), else_=limit),
            last_grant=case((fits, count), else_=limit - used),
        )
        .returning(SignalQuotaUsage.last_grant)
    )
    return int(result.scalar_one_or_none() or 0)


async def _give_back(session: AsyncSession, org_id: uuid.UUID, month: str, count: int) -> None:
    used = SignalQuotaUsage.used
    await session.execute(
        update(SignalQuotaUsage)
        .where(SignalQuotaUsage.org_id == org_id, SignalQuotaUsage.month == month)
        .values(used=case((used >= count, used - count), else_=0))
    )


def _insert_missing(session: AsyncSession, org_id: uuid.UUID, month: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` of a zero row, in the store's dialect."""
    row = dialect_insert(session, SignalQuotaUsage).values(
        org_id=org_id, month=month, used=0, last_grant=0
    )
    return row.on_conflict_do_nothing(index_elements=["org_id", "month"])
