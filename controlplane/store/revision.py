"""The catalog revision counter: how processes learn that the control plane changed."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.store.models import CatalogRevision


async def bump_revision(session: AsyncSession) -> None:
    """Mark the catalog changed, in the caller's transaction, so readers reload it."""
    await session.execute(
        update(CatalogRevision).where(CatalogRevision.id == 1).values(seq=CatalogRevision.seq + 1)
    )


async def current_revision(session: AsyncSession) -> int:
    """The counter's value now."""
    value = await session.scalar(select(CatalogRevision.seq).where(CatalogRevision.id == 1))
    return int(value or 0)
