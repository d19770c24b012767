"""``promptline admin list-orgs|list-projects|list-keys``: what exists, never a secret.

A key is shown by its id, name, prefix and scopes: the store keeps only the secret's
digest, and the prefix is what a person can match against the key they hold.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from controlplane.store.models import ApiKey, Organization, Project
from promptline.commands.admin import transaction
from promptline.commands.references import org_id, project_id
from promptline.settings import Settings

Row = dict[str, Any]


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


async def list_orgs(settings: Settings) -> list[Row]:
    """Every organisation, oldest first."""
    async with transaction(settings) as session:
        orgs = await session.scalars(select(Organization).order_by(Organization.created_at))
        return [
            {
                "org_id": str(org.id),
                "name": org.name,
                "plan": org.plan,
                "limit_overrides": len(org.limit_overrides or {}),
                "created_at": _when(org.created_at),
            }
            for org in orgs
        ]


async def list_projects(settings: Settings, org: uuid.UUID | str | None = None) -> list[Row]:
    """Every project, or one organisation's (by id or unique name), oldest first."""
    async with transaction(settings) as session:
        query = select(Project, Organization.name).join(
            Organization, Project.org_id == Organization.id
        )
        if org is not None:
            query = query.where(Project.org_id == await org_id(session, org))
        rows = await session.execute(query.order_by(Project.created_at))
        return [
            {
                "project_id": str(project.id),
                "name": project.name,
                "org_id": str(project.org_id),
                "org_name": org_name,
                "created_at": _when(project.created_at),
            }
            for project, org_name in rows
        ]


async def list_keys(settings: Settings, project: uuid.UUID | str | None = None) -> list[Row]:
    """Every API key, or one project's (by id or unique name): never the secret."""
    async with transaction(settings) as session:
        query = select(ApiKey, Project.name).join(Project, ApiKey.project_id == Project.id)
        if project is not None:
            query = query.where(ApiKey.project_id == await project_id(session, project))
        rows = await session.execute(query.order_by(ApiKey.created_at))
        return [
            {
                "key_id": str(key.id),
                "name": key.name,
                "prefix": key.prefix,
                "scopes": ",".join(key.scopes),
                "project_id": str(key.project_id),
                "project_name": project_name,
                "created_at": _when(key.created_at),
                "revoked_at": _when(key.revoked_at),
            }
            for key, project_name in rows
        ]


def format_rows(rows: list[Row], as_json: bool) -> str:
    """A plain table (one header line, columns padded), or a JSON array with ``as_json``."""
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = [columns, *cells]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
