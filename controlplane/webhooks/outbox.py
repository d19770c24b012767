"""The outbox: events are written to the store in the transaction of the decision they
report, and sent later by :mod:`controlplane.webhooks.delivery`.

Sending from the route (or the guard) itself would either hold the decision up on a
stranger's server or lose the event when the process stops before it was sent; a row
committed with the decision is sent however often the sender restarts, and a decision
rolled back leaves no event behind.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.ids import IdShape, encode
from controlplane.store.models import Delivery, Webhook, utcnow
from controlplane.webhooks.events import EVENT_TYPES, subscribed


async def enqueue(
    session: AsyncSession, project_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> int:
    """One delivery of ``event_type`` with ``payload`` (the envelope's ``data``: JSON
    types only) per live webhook of the project that takes it, added to ``session``'s
    transaction: they commit, or roll back, with the caller's work. Returns how many."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    hooks = await session.scalars(
        select(Webhook).where(Webhook.project_id == project_id, Webhook.deleted_at.is_(None))
    )
    now = utcnow()
    rows = [
        Delivery(
            webhook_id=hook.id,
            event_type=event_type,
            payload=payload,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        for hook in hooks
        if subscribed(hook.events, event_type)
    ]
    session.add_all(rows)
    await session.flush()
    return len(rows)


def envelope(delivery: Delivery, project_id: uuid.UUID, created_at: str) -> dict[str, Any]:
    """The JSON object POSTed for ``delivery``; the same on every attempt, so ``id``
    tells a receiver a retry from a new event."""
    return {
        "id": encode(IdShape.DELIVERY, delivery.id),
        "type": delivery.event_type,
        "created_at": created_at,
        "project_id": str(project_id),
        "data": delivery.payload,
    }
