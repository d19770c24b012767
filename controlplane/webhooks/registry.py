"""A project's webhooks: registering, listing (with each one's latest delivery), deleting."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Result, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from controlplane.store.models import Delivery, Webhook, utcnow
from controlplane.webhooks.signing import new_secret

MAX_WEBHOOKS_PER_PROJECT = 20
"""Bounds the deliveries one decision writes in its transaction."""

GAVE_UP_DELETED = "webhook deleted"


class TooManyWebhooks(ValueError):
    """The project already has as many webhooks as it may."""


async def create_webhook(
    session: AsyncSession,
    project_id: uuid.UUID,
    url: str,
    events: list[str],
    description: str,
) -> Webhook:
    """A new webhook with a fresh secret (the caller shows it once)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Webhook)
        .where(Webhook.project_id == project_id, Webhook.deleted_at.is_(None))
    )
    if (count or 0) >= MAX_WEBHOOKS_PER_PROJECT:
        raise TooManyWebhooks(
            f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks; delete one first."
        )
    hook = Webhook(
        project_id=project_id,
        url=url,
        secret=new_secret(),
        events=events,
        description=description,
        created_at=utcnow(),
    )
    session.add(hook)
    await session.flush()
    return hook


async def live_webhooks(session: AsyncSession, project_id: uuid.UUID) -> list[Webhook]:
    """The project's webhooks not deleted, oldest first."""
    rows = await session.scalars(
        select(Webhook)
        .where(Webhook.project_id == project_id, Webhook.deleted_at.is_(None))
        .order_by(Webhook.created_at, Webhook.id)
    )
    return list(rows)


async def latest_deliveries(
    session: AsyncSession, webhook_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Delivery]:
    """Each webhook's newest delivery, for those that have one (one query)."""
    if not webhook_ids:
        return {}
    order = (Delivery.created_at.desc(), Delivery.id.desc())
    ranked = (
        select(
            Delivery,
            func.row_number().over(partition_by=Delivery.webhook_id, order_by=order).label("rank"),
        )
        .where(Delivery.webhook_id.in_(webhook_ids))
        .subquery()
    )
    latest = aliased(Delivery, ranked)
    rows = await session.scalars(select(latest).where(ranked.c.rank == 1))
    return {row.webhook_id: row for row in rows}


async def delete_webhook(
    session: AsyncSession, project_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    """Delete the project's webhook (kept, marked deleted) and give up what it had
    still to send; False if the project has no such live webhook."""
    now = utcnow()
    result = await session.execute(
        update(Webhook)
        .where(
            Webhook.id == webhook_id,
            Webhook.project_id == project_id,
            Webhook.deleted_at.is_(None),
        )
        .values(deleted_at=now)
    )
    if rows_changed(result) != 1:
        return False
    await session.execute(
        update(Delivery)
        .where(
            Delivery.webhook_id == webhook_id,
            Delivery.next_attempt_at.is_not(None),
        )
        .values(next_attempt_at=None, failed_at=now, last_error=GAVE_UP_DELETED)
    )
    return True


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE changed (what ``session.execute`` returns for one)."""
    return int(cast("CursorResult[Any]", result).rowcount)
