"""The quota remembers charged idempotency keys: a retried signal is charged once, on both stores.

Claims are made the way the edge makes them (``ingest.accept``): a fresh signal id per
claim, so a repeat is told apart from a first charge by the id that comes back.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import SignalIdempotencyKey, SignalQuotaUsage
from ingest.key_housekeeping import KeyHousekeeping
from ingest.quota import MemoryQuota, SignalQuota, month_of
from ingest.quota_claims import Grant, GrantKind, KeyedSignal
from ingest.quota_store import StoreQuota
from tests.ingest.store import Tenant, seed_tenant

MONTH = "2026-11"
CREATED_MS = 1_795_000_000_123
_ids = itertools.count(1_000)


def _claim(
    tenant: Tenant, key: str, value: str = "positive", prompt: uuid.UUID | None = None
) -> KeyedSignal:
    return KeyedSignal(
        tenant.project_id,
        prompt or tenant.prompt_id,
        key,
        next(_ids),
        value,
        CREATED_MS + next(_ids),
    )


async def _used(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, month: str = MONTH
) -> int:
    async with sessions() as session:
        used = await session.scalar(
            select(SignalQuotaUsage.used).where(
                SignalQuotaUsage.org_id == tenant.org_id, SignalQuotaUsage.month == month
            )
        )
    return int(used or 0)


async def _keys(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(SignalIdempotencyKey)) or 0
        )


async def _one(
    quota: SignalQuota, tenant: Tenant, claim: KeyedSignal | None, limit: int = 10
) -> Grant:
    [grant] = await quota.reserve(tenant.org_id, MONTH, limit, [claim])
    return grant


async def test_a_retried_key_is_a_repeat_answered_as_the_first_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    first = _claim(tenant, "click-42")
    assert await _one(quota, tenant, first) == Grant(GrantKind.CHARGED)
    retry = _claim(tenant, "click-42", value="negative")  # a new id; the key decides
    assert await _one(quota, tenant, retry) == Grant(GrantKind.REPEAT, first)
    assert await _one(quota, tenant, _claim(tenant, "click-42")) == Grant(GrantKind.REPEAT, first)
    assert await _used(sessions, tenant) == 1
    # The same key for another prompt, or in another month, is another signal.
    other_prompt = _claim(tenant, "click-42", prompt=uuid.uuid4())
    assert (await _one(quota, tenant, other_prompt)).kind is GrantKind.CHARGED
    [later] = await quota.reserve(tenant.org_id, "2026-12", 10, [_claim(tenant, "click-42")])
    assert later.kind is GrantKind.CHARGED
    assert await _used(sessions, tenant) == 2 and await _used(sessions, tenant, "2026-12") == 1


async def test_a_repeat_is_answered_even_once_the_limit_is_reached(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    first = _claim(tenant, "k")
    assert (await _one(quota, tenant, first, limit=1)).kind is GrantKind.CHARGED
    assert (await _one(quota, tenant, None, limit=1)).kind is GrantKind.OVER_LIMIT
    assert await _one(quota, tenant, _claim(tenant, "k"), limit=1) == Grant(GrantKind.REPEAT, first)
    assert await _used(sessions, tenant) == 1


async def test_a_key_refused_over_the_limit_is_not_remembered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    grants = await quota.reserve(
        tenant.org_id, MONTH, 2, [None, _claim(tenant, "a"), _claim(tenant, "b")]
    )
    assert [grant.kind for grant in grants] == [
        GrantKind.CHARGED,
        GrantKind.CHARGED,
        GrantKind.OVER_LIMIT,
    ]
    assert await _keys(sessions) == 1  # "a" only
    # With room again, "b" is charged as a new signal, not answered as a repeat.
    assert (await _one(quota, tenant, _claim(tenant, "b"), limit=3)).kind is GrantKind.CHARGED
    assert await _used(sessions, tenant) == 3


async def test_one_key_twice_in_one_reservation_is_charged_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    first, again = _claim(tenant, "dup"), _claim(tenant, "dup")
    grants = await quota.reserve(tenant.org_id, MONTH, 10, [first, None, again])
    assert grants == [
        Grant(GrantKind.CHARGED),
        Grant(GrantKind.CHARGED),
        Grant(GrantKind.REPEAT, first),
    ]
    assert await _used(sessions, tenant) == 2


async def test_releasing_forgets_the_key_unless_a_repeat_was_answered_with_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    quota = StoreQuota(sessions)
    lone, shared = _claim(tenant, "lone"), _claim(tenant, "shared")
    await quota.reserve(tenant.org_id, MONTH, 10, [lone, shared])
    assert (await _one(quota, tenant, _claim(tenant, "shared"))).kind is GrantKind.REPEAT
    await quota.release(tenant.org_id, MONTH, 0, [lone, shared])  # Kafka refused both firsts
    # "lone" is forgotten and its unit given back; "shared" was answered to a retry whose
    # own record may be in Kafka, so it stays charged and remembered.
    assert await _used(sessions, tenant) == 1
    assert (await _one(quota, tenant, _claim(tenant, "lone"))).kind is GrantKind.CHARGED
    assert await _one(quota, tenant, _claim(tenant, "shared")) == Grant(GrantKind.REPEAT, shared)
    # Releasing a stale copy (another signal id) forgets nothing.
    await quota.release(tenant.org_id, MONTH, 0, [_claim(tenant, "lone")])
    assert await _used(sessions, tenant) == 2


async def test_concurrent_retries_of_one_key_on_two_engines_are_charged_once(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> None:
    tenant = await seed_tenant(sessions)
    other_engine = create_engine(store_url)
    try:
        quotas = [StoreQuota(sessions), StoreQuota(session_factory(other_engine))]
        claims = [_claim(tenant, "same") for _ in range(60)]
        grants = await asyncio.gather(
            *(_one(quotas[n % 2], tenant, claim) for n, claim in enumerate(claims))
        )
    finally:
        await other_engine.dispose()
    charged = [c for c, g in zip(claims, grants, strict=True) if g.kind is GrantKind.CHARGED]
    assert len(charged) == 1
    assert all(
        g == Grant(GrantKind.REPEAT, charged[0]) for g in grants if g.kind is GrantKind.REPEAT
    )
    assert await _used(sessions, tenant) == 1 and await _keys(sessions) == 1


async def test_concurrent_keys_and_retries_at_the_limit_charge_each_key_at_most_once(
    sessions: async_sessionmaker[AsyncSession], store_url: str
) -> None:
    """40 keys, each sent 3 times, over two engines, with room for 25.

    Each claim has a quota of its own (as if each came from another process), so every
    claim is its own transaction and the retries race in the store, not in one group.
    """
    tenant = await seed_tenant(sessions)
    other_engine = create_engine(store_url)
    try:
        factories = [sessions, session_factory(other_engine)]
        claims = [_claim(tenant, f"key-{n % 40}") for n in range(120)]
        grants = await asyncio.gather(
            *(
                _one(StoreQuota(factories[n % 2]), tenant, claim, limit=25)
                for n, claim in enumerate(claims)
            )
        )
    finally:
        await other_engine.dispose()
    charged = Counter(
        c.key for c, g in zip(claims, grants, strict=True) if g.kind is GrantKind.CHARGED
    )
    assert len(charged) == 25 and set(charged.values()) == {1}
    assert await _used(sessions, tenant) == 25 and await _keys(sessions) == 25
    for claim, grant in zip(claims, grants, strict=True):
        if claim.key in charged:  # every retry of a charged key is its repeat, never refused
            assert grant.kind is not GrantKind.OVER_LIMIT
        if grant.kind is GrantKind.REPEAT:
            assert grant.first is not None and grant.first.key == claim.key
            assert grant.first.key in charged


async def test_housekeeping_drops_only_past_months(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await seed_tenant(sessions)
    current = month_of(datetime.now(UTC))
    rows = [
        {
            "month": month,
            "org_id": tenant.org_id,
            "project_id": tenant.project_id,
            "prompt_id": tenant.prompt_id,
            "idempotency_key": "k",
            "signal_id": signal_id,
            "value": "positive",
            "created_ms": CREATED_MS,
            "repeats": 0,
        }
        for signal_id, month in enumerate(["2020-01", "2020-02", current])
    ]
    async with sessions() as session, session.begin():
        await session.execute(insert(SignalIdempotencyKey), rows)
    assert await KeyHousekeeping(sessions).run_once() == 2
    async with sessions() as session:
        months = (await session.scalars(select(SignalIdempotencyKey.month))).all()
    assert months == [current]


async def test_the_memory_quota_has_the_same_rules() -> None:
    quota = MemoryQuota()
    tenant = Tenant(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "p", "sha256:x", "key")
    first = _claim(tenant, "k")
    grants = await quota.reserve(tenant.org_id, MONTH, 2, [first, _claim(tenant, "k"), None, None])
    assert [g.kind for g in grants] == [
        GrantKind.CHARGED,
        GrantKind.REPEAT,
        GrantKind.CHARGED,
        GrantKind.OVER_LIMIT,
    ]
    assert await _one(quota, tenant, _claim(tenant, "k"), limit=2) == Grant(GrantKind.REPEAT, first)
    await quota.release(tenant.org_id, MONTH, 0, [first])  # repeated: kept, still charged
    assert quota.used[(tenant.org_id, MONTH)] == 2
    lone = _claim(tenant, "lone")
    assert (await _one(quota, tenant, lone, limit=3)).kind is GrantKind.CHARGED
    await quota.release(tenant.org_id, MONTH, 0, [lone])
    assert quota.used[(tenant.org_id, MONTH)] == 2
    assert (await _one(quota, tenant, _claim(tenant, "lone"), limit=3)).kind is GrantKind.CHARGED
