"""The statements on ``signal_idempotency_keys``: offer keys, forget them, drop old months.

Kept apart from the counter (``ingest.quota_store``), which runs them inside its own
transactions; see ``ingest.quota_claims`` for what the rows mean.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.store.models import SignalIdempotencyKey
from ingest.quota_claims import Identity, KeyedSignal

Row = SignalIdempotencyKey


def dialect_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``table`` in the store's dialect (both have ``ON CONFLICT``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def offer_keys(
    session: AsyncSession,
    org_id: uuid.UUID,
    month: str,
    firsts: Mapping[Identity, tuple[KeyedSignal, int]],
) -> dict[Identity, KeyedSignal]:
    """Insert each identity's first claim, or count a repeat where the key is already there.

    Returns the keys that were there before (charged by an earlier request), as they were
    first charged. ``firsts`` gives each identity's first claim and how many later claims
    of the group repeat it (the new row's ``repeats``). Rows go in identity order, so two
    transactions offering the same keys take their locks in the same order.
    """
    if not firsts:
        return {}
    ordered = sorted(firsts.items(), key=lambda item: _order(item[0]))
    insert = dialect_insert(session, Row).values(
        [
            {
                "month": month,
                "org_id": org_id,
                "project_id": claim.project_id,
                "prompt_id": claim.prompt_id,
                "idempotency_key": claim.key,
                "signal_id": claim.signal_id,
                "value": claim.value,
                "created_ms": claim.created_ms,
                "repeats": copies,
            }
            for _identity, (claim, copies) in ordered
        ]
    )
    upsert = insert.on_conflict_do_update(
        index_elements=["month", "org_id", "project_id", "prompt_id", "idempotency_key"],
        set_={"repeats": Row.repeats + 1},
    ).returning(
        Row.project_id,
        Row.prompt_id,
        Row.idempotency_key,
        Row.signal_id,
        Row.value,
        Row.created_ms,
    )
    remembered: dict[Identity, KeyedSignal] = {}
    for project_id, prompt_id, key, signal_id, value, created_ms in await session.execute(upsert):
        identity = (project_id, prompt_id, key)
        if signal_id != firsts[identity][0].signal_id:
            remembered[identity] = KeyedSignal(
                project_id, prompt_id, key, int(signal_id), value, int(created_ms)
            )
    return remembered


async def forget_keys(
    session: AsyncSession,
    org_id: uuid.UUID,
    month: str,
    signals: Sequence[KeyedSignal],
    unless_repeated: bool,
) -> int:
    """Delete the rows of ``signals`` (only theirs: same signal id); how many were deleted.

    With ``unless_repeated``, a row a repeat was answered with is kept.
    """
    if not signals:
        return 0
    ordered = sorted(signals, key=lambda signal: _order(signal.identity))
    statement = delete(Row).where(
        Row.month == month,
        Row.org_id == org_id,
        tuple_(Row.project_id, Row.prompt_id, Row.idempotency_key, Row.signal_id).in_(
            [(s.project_id, s.prompt_id, s.key, s.signal_id) for s in ordered]
        ),
    )
    if unless_repeated:
        statement = statement.where(Row.repeats == 0)
    return _deleted(await session.execute(statement))


async def drop_months_before(session: AsyncSession, month: str) -> int:
    """Delete every key of a month before ``month``: a retry then is charged to its own month."""
    return _deleted(await session.execute(delete(Row).where(Row.month < month)))


def _deleted(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)


def _order(identity: Identity) -> tuple[str, str, str]:
    project_id, prompt_id, key = identity
    return (str(project_id), str(prompt_id), key)
