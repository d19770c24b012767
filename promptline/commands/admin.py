"""``promptline admin``: organisations, projects and API keys, from the command line."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.authoring import get_or_create_prompt, push_version
from controlplane.overrides import override_name, parse_override
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import Organization, Project, PromptVersion
from controlplane.tenancy import (
    ALL_SCOPES,
    create_api_key,
    create_organization,
    create_project,
    revoke_api_key,
    set_limit_overrides,
    set_plan,
)
from promptline.settings import Settings

DEMO_PROMPT = "checkout-assistant"
DEMO_CONTENT = (
    "You are a helpful checkout assistant for {{store_name}}. "
    "Guide the user through their purchase. Be concise and friendly."
)


@contextlib.asynccontextmanager
async def _transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on the store, committed when the block ends; the engine disposed."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def create_org(settings: Settings, name: str, plan: str) -> dict[str, Any]:
    """Create an organisation."""
    async with _transaction(settings) as session:
        org = await create_organization(session, name, plan)
        return {"org_id": str(org.id), "name": org.name, "plan": org.plan}


async def create_proj(settings: Settings, org_id: uuid.UUID, name: str) -> dict[str, Any]:
    """Create a project in an organisation."""
    async with _transaction(settings) as session:
        project = await create_project(session, org_id, name)
        return {"project_id": str(project.id), "org_id": str(org_id), "name": name}


async def create_key(
    settings: Settings, project_id: uuid.UUID, scopes: list[str], name: str
) -> dict[str, Any]:
    """Create an API key; its secret is printed once and never stored."""
    async with _transaction(settings) as session:
        issued = await create_api_key(session, project_id, scopes, name)
        return {
            "key_id": str(issued.key_id),
            "project_id": str(project_id),
            "scopes": list(issued.scopes),
            "api_key": issued.secret,
        }


async def revoke_key(settings: Settings, key_id: uuid.UUID) -> dict[str, Any]:
    """Revoke an API key; every serving process refuses it within a second."""
    async with _transaction(settings) as session:
        revoked_at = await revoke_api_key(session, key_id)
        return {"key_id": str(key_id), "revoked_at": revoked_at.isoformat()}


async def change_plan(settings: Settings, org_id: uuid.UUID, plan: str) -> dict[str, Any]:
    """Move an organisation to another plan (limits and quota follow within a second)."""
    async with _transaction(settings) as session:
        org = await set_plan(session, org_id, plan)
        return {"org_id": str(org.id), "name": org.name, "plan": org.plan}


async def change_limits(
    settings: Settings,
    org_id: uuid.UUID,
    add: list[str],
    remove: list[str],
    *,
    reset: bool = False,
) -> dict[str, Any]:
    """Set, drop or reset an organisation's limit overrides (``controlplane.overrides``)."""
    parsed = dict(parse_override(text) for text in add)  # ValueError before any write
    async with _transaction(settings) as session:
        overrides = await set_limit_overrides(
            session, org_id, parsed, [override_name(name) for name in remove], reset=reset
        )
        return {"org_id": str(org_id), "limit_overrides": overrides}


async def quickstart(settings: Settings) -> dict[str, Any]:
    """The local organisation, project and demo prompt (made once), and a fresh key."""
    async with _transaction(settings) as session:
        org = await session.scalar(select(Organization).where(Organization.name == "local"))
        if org is None:
            org = await create_organization(session, "local", "business")
        project = await session.scalar(
            select(Project).where(Project.org_id == org.id, Project.name == "default")
        )
        if project is None:
            project = await create_project(session, org.id, "default")
        prompt = await get_or_create_prompt(session, project.id, DEMO_PROMPT)
        version = await session.scalar(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id).limit(1)
        )
        if version is None:
            version = await push_version(
                session, prompt, DEMO_CONTENT, message="First version", created_by="quickstart"
            )
        issued = await create_api_key(session, project.id, ALL_SCOPES, "quickstart")
        return {
            "org_id": str(org.id),
            "project_id": str(project.id),
            "api_key": issued.secret,
            "prompt_name": prompt.name,
            "prompt_id": str(prompt.id),
            "version_hash": version.content_hash,
        }
