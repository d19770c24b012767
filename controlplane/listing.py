"""Read queries of the listing routes: prompts with their counts, and versions in order.

These are not the hot path (resolve reads the in-memory catalog), so they query the store
and always show committed state, including writes made through other processes. Names are
ordered in Python, by code point, because SQLite and PostgreSQL collate text differently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.deployments import current_deployment, current_deployments, serving_versions
from controlplane.store.models import Deployment, Prompt, PromptVersion


@dataclass(frozen=True, slots=True)
class PromptOverview:
    """A prompt with its version count, latest version number and deployment in force."""

    prompt: Prompt
    version_count: int
    latest: int | None
    deployment: Deployment | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A version with its prompt, and whether it gets traffic now (seed 002's is_active)."""

    prompt: Prompt
    version: PromptVersion
    serving: bool


async def prompt_overviews(session: AsyncSession, project_id: uuid.UUID) -> list[PromptOverview]:
    """Every prompt of a project, by name."""
    prompts = sorted(
        await session.scalars(select(Prompt).where(Prompt.project_id == project_id)),
        key=lambda prompt: prompt.name,
    )
    stats = await session.execute(
        select(PromptVersion.prompt_id, func.count(), func.max(PromptVersion.number))
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Prompt.project_id == project_id)
        .group_by(PromptVersion.prompt_id)
    )
    counts = {prompt_id: (int(count), int(latest)) for prompt_id, count, latest in stats}
    deployments = await current_deployments(session, project_id)
    return [
        PromptOverview(
            prompt=prompt,
            version_count=counts.get(prompt.id, (0, 0))[0],
            latest=counts[prompt.id][1] if prompt.id in counts else None,
            deployment=deployments.get(prompt.id),
        )
        for prompt in prompts
    ]


async def prompt_overview(session: AsyncSession, prompt: Prompt) -> PromptOverview:
    """One prompt's overview."""
    count, latest = (
        await session.execute(
            select(func.count(), func.max(PromptVersion.number)).where(
                PromptVersion.prompt_id == prompt.id
            )
        )
    ).one()
    return PromptOverview(
        prompt=prompt,
        version_count=int(count),
        latest=int(latest) if latest is not None else None,
        deployment=await current_deployment(session, prompt.id),
    )


async def versions_of(session: AsyncSession, prompt_id: uuid.UUID) -> list[PromptVersion]:
    """A prompt's versions, newest first."""
    rows = await session.scalars(
        select(PromptVersion)
        .where(PromptVersion.prompt_id == prompt_id)
        .order_by(PromptVersion.number.desc())
    )
    return list(rows)


async def version_rows(
    session: AsyncSession, project_id: uuid.UUID, prompt: Prompt | None = None
) -> list[VersionRow]:
    """Versions of a project (or of one prompt): by name, then newest version first."""
    query = (
        select(Prompt, PromptVersion)
        .join(PromptVersion, PromptVersion.prompt_id == Prompt.id)
        .where(Prompt.project_id == project_id)
    )
    if prompt is not None:
        query = query.where(Prompt.id == prompt.id)
    rows = sorted(
        ((owner, version) for owner, version in await session.execute(query)),
        key=lambda row: (row[0].name, -row[1].number),
    )
    if prompt is None:
        deployments = await current_deployments(session, project_id)
    else:
        current = await current_deployment(session, prompt.id)
        deployments = {prompt.id: current} if current is not None else {}
    latest: dict[uuid.UUID, int] = {}
    for owner, version in rows:
        latest.setdefault(owner.id, version.number)  # rows are newest first per prompt
    serving = {
        owner_id: serving_versions(deployments.get(owner_id), number)
        for owner_id, number in latest.items()
    }
    return [
        VersionRow(owner, version, version.number in serving[owner.id]) for owner, version in rows
    ]
