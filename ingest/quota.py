"""The monthly signal quota (seed 000): how many signals an organisation may send a month.

Limits by plan: free 1,000, team 10,000, business 100,000 a UTC calendar month; an
organisation's ``limit_overrides`` may set ``{"signals_per_month": <int>}``. A signal
is counted when reserved, before it is produced; if Kafka then refuses it, the
reservation is released, so a 503 never uses quota. A signal with an idempotency key is
charged once a month however often it is retried (``ingest.quota_claims``). The
store-backed counter lives in ``ingest.quota_store``; :class:`MemoryQuota` has the same
semantics for one process.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from controlplane.catalog import Principal
from controlplane.store.models import Plan
from ingest.quota_claims import ClaimPlan, Grant, Identity, KeyedSignal, first_claims

SIGNALS_PER_MONTH = {Plan.FREE.value: 1_000, Plan.TEAM.value: 10_000, Plan.BUSINESS.value: 100_000}
OVERRIDE_KEY = "signals_per_month"


class QuotaUnavailable(Exception):
    """The quota counter could not be reached; refuse (503) rather than over-admit."""


class SignalQuota(Protocol):
    """Reserve and release units of an organisation's monthly signal quota.

    A claim is ``None`` for a signal without an idempotency key, else the
    :class:`~ingest.quota_claims.KeyedSignal` it would be remembered as; a key charged
    this month is not charged again (``ingest.quota_claims``).
    """

    async def reserve(
        self, org_id: uuid.UUID, month: str, limit: int, claims: Sequence[KeyedSignal | None]
    ) -> list[Grant]:
        """Charge the claims below ``limit``, first come first served; one grant each."""
        ...

    async def release(
        self, org_id: uuid.UUID, month: str, count: int, keyed: Sequence[KeyedSignal] = ()
    ) -> None:
        """Give back ``count`` unkeyed units and the charged keyed signals ``keyed``."""
        ...


def monthly_signal_limit(principal: Principal) -> int:
    """The organisation's monthly signal limit: its override, else its plan's."""
    override = principal.limit_overrides.get(OVERRIDE_KEY)
    if isinstance(override, int) and not isinstance(override, bool) and override >= 0:
        return override
    return SIGNALS_PER_MONTH.get(principal.plan, SIGNALS_PER_MONTH[Plan.FREE.value])


def month_of(moment: datetime) -> str:
    """The quota period a moment falls in: its UTC month, ``YYYY-MM``."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def next_month_start(moment: datetime) -> datetime:
    """When the quota period of ``moment`` ends (start of the next UTC month)."""
    utc = moment.astimezone(UTC)
    year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Remembered:
    signal: KeyedSignal
    repeats: int


class MemoryQuota:
    """Counters and keys in this process's memory: exact within one process (tests, tools)."""

    def __init__(self) -> None:
        self.used: dict[tuple[uuid.UUID, str], int] = {}
        self.keys: dict[tuple[uuid.UUID, str, Identity], _Remembered] = {}

    async def reserve(
        self, org_id: uuid.UUID, month: str, limit: int, claims: Sequence[KeyedSignal | None]
    ) -> list[Grant]:
        """Grant what is left of ``limit``; a key charged before is a repeat."""
        firsts = first_claims(claims)
        remembered: dict[Identity, KeyedSignal] = {}
        for identity in firsts:
            kept = self.keys.get((org_id, month, identity))
            if kept is not None:
                kept.repeats += 1
                remembered[identity] = kept.signal
        plan = ClaimPlan(claims, remembered)
        used = self.used.get((org_id, month), 0)
        granted = max(0, min(plan.chargeable, limit - used))
        self.used[(org_id, month)] = used + granted
        grants = plan.grants(granted)
        for signal in plan.charged_keys(grants):
            copies = firsts[signal.identity][1]
            self.keys[(org_id, month, signal.identity)] = _Remembered(signal, copies)
        return grants

    async def release(
        self, org_id: uuid.UUID, month: str, count: int, keyed: Sequence[KeyedSignal] = ()
    ) -> None:
        """Give units back; a key is forgotten (and its unit given back) unless repeated."""
        given = count
        for signal in keyed:
            kept = self.keys.get((org_id, month, signal.identity))
            if kept is not None and kept.signal.signal_id == signal.signal_id and not kept.repeats:
                del self.keys[(org_id, month, signal.identity)]
                given += 1
        key = (org_id, month)
        self.used[key] = max(0, self.used.get(key, 0) - given)
