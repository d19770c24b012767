"""Revoking an API key: once, for good, and the catalog notices."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.catalog import load_catalog
from controlplane.keys import digest
from controlplane.store.revision import current_revision
from controlplane.tenancy import (
    create_api_key,
    create_organization,
    create_project,
    revoke_api_key,
)


async def test_a_revoked_key_leaves_the_catalog_and_the_revision_moves(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        org = await create_organization(session, "o", "team")
        project = await create_project(session, org.id, "p")
        issued = await create_api_key(session, project.id, ["read"])
        kept = await create_api_key(session, project.id, ["read"])
    async with sessions() as session, session.begin():
        before = await current_revision(session)
        first = await revoke_api_key(session, issued.key_id)
    async with sessions() as session, session.begin():
        assert await current_revision(session) == before + 1
        catalog = await load_catalog(session)
        again = await revoke_api_key(session, issued.key_id)
        assert await current_revision(session) == before + 1  # revoking twice changes nothing
    assert again.replace(tzinfo=None) == first.replace(tzinfo=None)
    assert catalog.principal(digest(issued.secret)) is None
    assert catalog.principal(digest(kept.secret)) is not None


async def test_revoking_an_unknown_key_is_an_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="no API key"):
            await revoke_api_key(session, uuid.uuid4())
