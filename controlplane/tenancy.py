"""Organisations, projects and API keys: what the admin command creates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.keys import generate_key
from controlplane.store.models import ApiKey, Organization, Plan, Project, Scope, utcnow
from controlplane.store.revision import bump_revision

ALL_SCOPES = tuple(scope.value for scope in Scope)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: its secret is shown to the user once and never stored."""

    key_id: uuid.UUID
    project_id: uuid.UUID
    secret: str
    scopes: tuple[str, ...]


def parse_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated scope names; raises ValueError on an unknown one."""
    known = set(ALL_SCOPES)
    result: dict[str, None] = {}
    for scope in scopes:
        if scope not in known:
            raise ValueError(f"unknown scope {scope!r}; known: {', '.join(ALL_SCOPES)}")
        result.setdefault(scope, None)
    return tuple(result)


async def create_organization(session: AsyncSession, name: str, plan: str) -> Organization:
    """A new organisation on ``plan`` (free, team or business)."""
    org = Organization(name=name, plan=Plan(plan).value, limit_overrides={})
    session.add(org)
    await bump_revision(session)
    await session.flush()
    return org


async def create_project(session: AsyncSession, org_id: uuid.UUID, name: str) -> Project:
    """A new project in an organisation."""
    project = Project(org_id=org_id, name=name)
    session.add(project)
    await bump_revision(session)
    await session.flush()
    return project


async def create_api_key(
    session: AsyncSession, project_id: uuid.UUID, scopes: Iterable[str], name: str = ""
) -> IssuedKey:
    """A new key for a project; the returned secret is the only copy."""
    checked = parse_scopes(scopes)
    new = generate_key()
    key = ApiKey(
        project_id=project_id,
        name=name,
        prefix=new.prefix,
        secret_sha256=new.sha256,
        scopes=list(checked),
    )
    session.add(key)
    await bump_revision(session)
    await session.flush()
    return IssuedKey(key_id=key.id, project_id=project_id, secret=new.secret, scopes=checked)


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> datetime:
    """Revoke a key for good; every process refuses it from its next catalog reload.

    Returns when the key was revoked (the first time, if it already was: revoking twice
    is harmless). Raises ValueError for an unknown key id.
    """
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise ValueError(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await bump_revision(session)
        await session.flush()
    return key.revoked_at


async def _organization(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise ValueError(f"no organisation {org_id}")
    return org


async def set_plan(session: AsyncSession, org_id: uuid.UUID, plan: str) -> Organization:
    """Move an organisation to another plan; every process applies it from its next reload."""
    org = await _organization(session, org_id)
    org.plan = Plan(plan).value
    await bump_revision(session)
    await session.flush()
    return org


async def set_limit_overrides(
    session: AsyncSession,
    org_id: uuid.UUID,
    add: Mapping[str, str | int],
    remove: Iterable[str] = (),
    *,
    reset: bool = False,
) -> dict[str, Any]:
    """Change an organisation's overrides (checked by ``controlplane.overrides``).

    ``reset`` drops every override first; ``remove`` drops the named ones; ``add`` sets
    (or replaces) values. Returns the overrides now stored.
    """
    org = await _organization(session, org_id)
    overrides: dict[str, Any] = {} if reset else dict(org.limit_overrides or {})
    for name in remove:
        overrides.pop(name, None)
    overrides.update(add)
    org.limit_overrides = overrides  # a new object, so the JSON column is seen as changed
    await bump_revision(session)
    await session.flush()
    return overrides
