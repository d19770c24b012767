"""An in-memory snapshot of the control plane for the hot paths.

Resolve and ingest answer from this snapshot, never from the database. A watcher polls
the catalog revision counter and swaps in a fresh snapshot when it moves, so a change
made through any process is seen by every other within one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import ApiKey, Organization, Project, Prompt, PromptVersion
from controlplane.store.revision import current_revision

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its project and organisation, plan and scopes."""

    key_id: uuid.UUID
    project_id: uuid.UUID
    org_id: uuid.UUID
    plan: str
    scopes: frozenset[str]
    limit_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """What the hot paths need of a version."""

    id: uuid.UUID
    number: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class PromptEntry:
    """What the hot paths need of a prompt, with its versions by number and by hash."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    versions_by_number: dict[int, VersionEntry]
    versions_by_hash: dict[str, VersionEntry]


@dataclass(frozen=True, slots=True)
class Catalog:
    """One consistent snapshot, read in a single transaction."""

    revision: int
    principals: dict[str, Principal]
    prompts: dict[uuid.UUID, PromptEntry]

    def principal(self, key_sha256: str) -> Principal | None:
        """The principal of a key digest, or None for an unknown or revoked key."""
        return self.principals.get(key_sha256)

    def prompt(self, project_id: uuid.UUID, prompt_id: uuid.UUID) -> PromptEntry | None:
        """The prompt if it exists *in this project*; other projects' prompts are invisible."""
        entry = self.prompts.get(prompt_id)
        return entry if entry is not None and entry.project_id == project_id else None


EMPTY_CATALOG = Catalog(revision=-1, principals={}, prompts={})


async def load_catalog(session: AsyncSession) -> Catalog:
    """Read the whole catalog; control-plane data is small next to event data."""
    revision = await current_revision(session)
    principals: dict[str, Principal] = {}
    key_rows = await session.execute(
        select(ApiKey, Project.org_id, Organization.plan, Organization.limit_overrides)
        .join(Project, ApiKey.project_id == Project.id)
        .join(Organization, Project.org_id == Organization.id)
        .where(ApiKey.revoked_at.is_(None))
    )
    for key, org_id, plan, overrides in key_rows:
        principals[key.secret_sha256] = Principal(
            key_id=key.id,
            project_id=key.project_id,
            org_id=org_id,
            plan=plan,
            scopes=frozenset(key.scopes),
            limit_overrides=dict(overrides or {}),
        )
    prompts: dict[uuid.UUID, PromptEntry] = {}
    for prompt in await session.scalars(select(Prompt)):
        prompts[prompt.id] = PromptEntry(prompt.id, prompt.project_id, prompt.name, {}, {})
    for version in await session.scalars(select(PromptVersion)):
        parent = prompts.get(version.prompt_id)
        if parent is None:
            continue
        entry = VersionEntry(version.id, version.number, version.content_hash)
        parent.versions_by_number[version.number] = entry
        parent.versions_by_hash[version.content_hash] = entry
    return Catalog(revision=revision, principals=principals, prompts=prompts)


class CatalogWatcher:
    """Keeps ``current`` fresh by polling the revision counter in the background."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], poll_interval: float = 0.25
    ) -> None:
        self.sessions = sessions
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self.current: Catalog = EMPTY_CATALOG

    async def start(self) -> None:
        """Load the first snapshot, then poll in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="catalog-watcher")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """Reload now if the revision moved (or on first load)."""
        async with self.sessions() as session, session.begin():
            revision = await current_revision(session)
            if revision != self.current.revision:
                self.current = await load_catalog(session)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("catalog refresh failed; serving the previous snapshot")
