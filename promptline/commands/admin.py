"""``promptline admin``: organisations, projects and API keys, from the command line."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.authoring import get_or_create_prompt, push_version
from controlplane.keys import digest
from controlplane.overrides import override_name, parse_override
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import ApiKey, Organization, Project, PromptVersion
from controlplane.tenancy import (
    ALL_SCOPES,
    create_api_key,
    create_organization,
    create_project,
    revoke_api_key,
    set_limit_overrides,
    set_plan,
)
from promptline.commands.references import org_id, project_id
from promptline.commands.served_limits import refuse_unserved
from promptline.settings import Settings

DEMO_PROMPT = "checkout-assistant"
DEMO_CONTENT = (
    "You are a helpful checkout assistant for {{store_name}}. "
    "Guide the user through their purchase. Be concise and friendly."
)


@contextlib.asynccontextmanager
async def transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on the store, committed when the block ends; the engine disposed."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def create_org(settings: Settings, name: str, plan: str) -> dict[str, Any]:
    """Create an organisation."""
    async with transaction(settings) as session:
        org = await create_organization(session, name, plan)
        return {"org_id": str(org.id), "name": org.name, "plan": org.plan}


async def create_proj(settings: Settings, org: uuid.UUID | str, name: str) -> dict[str, Any]:
    """Create a project in an organisation (its id, or its unique name)."""
    async with transaction(settings) as session:
        project = await create_project(session, await org_id(session, org), name)
        return {"project_id": str(project.id), "org_id": str(project.org_id), "name": name}


async def create_key(
    settings: Settings, project: uuid.UUID | str, scopes: list[str], name: str
) -> dict[str, Any]:
    """Create an API key; its secret is printed once and never stored."""
    async with transaction(settings) as session:
        issued = await create_api_key(session, await project_id(session, project), scopes, name)
        return {
            "key_id": str(issued.key_id),
            "project_id": str(issued.project_id),
            "scopes": list(issued.scopes),
            "api_key": issued.secret,
        }


async def revoke_key(settings: Settings, key_id: uuid.UUID) -> dict[str, Any]:
    """Revoke an API key; every serving process refuses it within a second."""
    async with transaction(settings) as session:
        revoked_at = await revoke_api_key(session, key_id)
        return {"key_id": str(key_id), "revoked_at": revoked_at.isoformat()}


async def change_plan(settings: Settings, org: uuid.UUID | str, plan: str) -> dict[str, Any]:
    """Move an organisation to another plan (limits and quota follow within a second)."""
    async with transaction(settings) as session:
        changed = await set_plan(session, await org_id(session, org), plan)
        return {"org_id": str(changed.id), "name": changed.name, "plan": changed.plan}


async def change_limits(
    settings: Settings,
    org: uuid.UUID | str,
    add: list[str],
    remove: list[str],
    *,
    reset: bool = False,
    served: Collection[str] | None = None,
) -> dict[str, Any]:
    """Set, drop or reset an organisation's limit overrides (``controlplane.overrides``).

    With ``served`` (``served_limits.served_endpoints``), an override for an endpoint the
    service does not rate-limit is refused: stored, it would never apply.
    """
    parsed = dict(parse_override(text) for text in add)  # ValueError before any write
    if served is not None:
        refuse_unserved(parsed, served)
    async with transaction(settings) as session:
        found = await org_id(session, org)
        overrides = await set_limit_overrides(
            session, found, parsed, [override_name(name) for name in remove], reset=reset
        )
        return {"org_id": str(found), "limit_overrides": overrides}


async def quickstart(settings: Settings, keep: str = "") -> dict[str, Any]:
    """The local organisation, project and demo prompt (made once), and a key.

    The key is ``keep`` if that is a live key of the local project (a stack already up
    keeps the key its user holds; ``key_kept`` says so), else a fresh one.
    """
    async with transaction(settings) as session:
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
        kept = bool(keep) and await _live_key(session, project.id, keep)
        secret = (
            keep
            if kept
            else (await create_api_key(session, project.id, ALL_SCOPES, "quickstart")).secret
        )
        return {
            "org_id": str(org.id),
            "project_id": str(project.id),
            "api_key": secret,
            "key_kept": kept,
            "prompt_name": prompt.name,
            "prompt_id": str(prompt.id),
            "version_hash": version.content_hash,
        }


async def _live_key(session: AsyncSession, project: uuid.UUID, secret: str) -> bool:
    """Whether ``secret`` is an unrevoked key of ``project`` (so it still authenticates)."""
    key = await session.scalar(select(ApiKey).where(ApiKey.secret_sha256 == digest(secret)))
    return key is not None and key.project_id == project and key.revoked_at is None
