"""``--org`` and ``--project`` as a person types them: an id, or a name that is unique.

Only ``create-org`` and ``create-project`` ever print an id, so every admin command that
takes one also takes the name; a name several rows share is refused with their ids, so
the command never picks one for the user.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.store.models import Organization, Project


def _as_uuid(reference: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(reference, uuid.UUID):
        return reference
    try:
        return uuid.UUID(reference.strip())
    except ValueError:
        return None


def _one(kind: str, reference: str, rows: list[tuple[uuid.UUID, str]]) -> uuid.UUID:
    if not rows:
        raise ValueError(f"no {kind} has the id or name {reference!r}")
    if len(rows) > 1:
        listed = ", ".join(f"{row_id} ({where})" for row_id, where in rows)
        raise ValueError(f"{len(rows)} {kind}s are named {reference!r}; pass an id: {listed}")
    return rows[0][0]


async def org_id(session: AsyncSession, reference: uuid.UUID | str) -> uuid.UUID:
    """The organisation ``reference`` names (its id, or its unique name)."""
    as_id = _as_uuid(reference)
    if as_id is not None:
        if await session.get(Organization, as_id) is None:
            raise ValueError(f"no organisation {as_id}")
        return as_id
    named = await session.execute(
        select(Organization.id, Organization.plan).where(Organization.name == reference)
    )
    rows = [(row_id, f"plan {plan}") for row_id, plan in named]
    return _one("organisation", str(reference), rows)


async def project_id(session: AsyncSession, reference: uuid.UUID | str) -> uuid.UUID:
    """The project ``reference`` names (its id, or a name unique across organisations)."""
    as_id = _as_uuid(reference)
    if as_id is not None:
        if await session.get(Project, as_id) is None:
            raise ValueError(f"no project {as_id}")
        return as_id
    named = await session.execute(
        select(Project.id, Organization.name)
        .join(Organization, Project.org_id == Organization.id)
        .where(Project.name == reference)
    )
    rows = [(row_id, f"organisation {org_name!r}") for row_id, org_name in named]
    return _one("project", str(reference), rows)
