"""A real control-plane store (SQLite, migrated) for the edge's quota and lease tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.authoring import push_numbered_version
from controlplane.tenancy import create_api_key, create_organization, create_project


@dataclass(frozen=True, slots=True)
class Tenant:
    """An organisation with one project, one prompt (version 1) and an ingest key."""

    org_id: uuid.UUID
    project_id: uuid.UUID
    prompt_id: uuid.UUID
    prompt_name: str
    version_hash: str
    key: str


async def seed_tenant(
    sessions: async_sessionmaker[AsyncSession],
    plan: str = "free",
    overrides: dict[str, Any] | None = None,
) -> Tenant:
    """Create a tenant the edge can serve."""
    async with sessions() as session, session.begin():
        org = await create_organization(session, f"org-{uuid.uuid4().hex[:8]}", plan)
        org.limit_overrides = dict(overrides or {})
        project = await create_project(session, org.id, "web")
        prompt, version = await push_numbered_version(
            session, project.id, "checkout-assistant", 1, "You help people check out."
        )
        issued = await create_api_key(session, project.id, ["ingest"], "edge tests")
        return Tenant(
            org.id, project.id, prompt.id, prompt.name, version.content_hash, issued.secret
        )
