"""The monthly signal quota (seed 000): how many signals an organisation may send a month.

Limits by plan: free 1,000, team 10,000, business 100,000 a UTC calendar month; an
organisation's ``limit_overrides`` may set ``{"signals_per_month": <int>}``. A signal
is counted when reserved, before it is produced; if Kafka then refuses it, the
reservation is released, so a 503 never uses quota. The store-backed counter lives in
``ingest.quota_store``; :class:`MemoryQuota` has the same semantics for one process.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol

from controlplane.catalog import Principal
from controlplane.store.models import Plan

SIGNALS_PER_MONTH = {Plan.FREE.value: 1_000, Plan.TEAM.value: 10_000, Plan.BUSINESS.value: 100_000}
OVERRIDE_KEY = "signals_per_month"


class QuotaUnavailable(Exception):
    """The quota counter could not be reached; refuse (503) rather than over-admit."""


class SignalQuota(Protocol):
    """Reserve and release units of an organisation's monthly signal quota."""

    async def reserve(self, org_id: uuid.UUID, month: str, limit: int, count: int) -> int:
        """Reserve up to ``count`` units below ``limit``; returns how many were granted."""
        ...

    async def release(self, org_id: uuid.UUID, month: str, count: int) -> None:
        """Give back ``count`` units reserved for signals that were not accepted."""
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


class MemoryQuota:
    """Counters in this process's memory: exact within one process (tests, tools)."""

    def __init__(self) -> None:
        self.used: dict[tuple[uuid.UUID, str], int] = {}

    async def reserve(self, org_id: uuid.UUID, month: str, limit: int, count: int) -> int:
        """Grant what is left of ``limit``, up to ``count``."""
        used = self.used.get((org_id, month), 0)
        granted = max(0, min(count, limit - used))
        self.used[(org_id, month)] = used + granted
        return granted

    async def release(self, org_id: uuid.UUID, month: str, count: int) -> None:
        """Give ``count`` units back."""
        key = (org_id, month)
        self.used[key] = max(0, self.used.get(key, 0) - count)
