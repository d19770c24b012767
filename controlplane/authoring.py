"""Writing prompts and their versions."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.store.models import Prompt, PromptVersion, utcnow
from controlplane.store.revision import bump_revision
from controlplane.versions import content_hash, find_variables


async def get_or_create_prompt(
    session: AsyncSession, project_id: uuid.UUID, name: str, description: str = ""
) -> Prompt:
    """The project's prompt of that name, created if it does not exist yet."""
    prompt = await session.scalar(
        select(Prompt).where(Prompt.project_id == project_id, Prompt.name == name)
    )
    if prompt is None:
        prompt = Prompt(project_id=project_id, name=name, description=description)
        session.add(prompt)
        await session.flush()
    return prompt


async def push_version(
    session: AsyncSession,
    prompt: Prompt,
    content: str,
    *,
    message: str = "",
    created_by: str = "",
    variables: list[str] | None = None,
    number: int | None = None,
) -> PromptVersion:
    """Append an immutable version, numbered after the last one unless ``number`` is given."""
    if number is None:
        last = await session.scalar(
            select(func.max(PromptVersion.number)).where(PromptVersion.prompt_id == prompt.id)
        )
        number = int(last or 0) + 1
    version = PromptVersion(
        prompt_id=prompt.id,
        number=number,
        content=content,
        content_hash=content_hash(content),
        variables=find_variables(content, variables),
        message=message,
        created_by=created_by,
    )
    session.add(version)
    prompt.updated_at = utcnow()
    await bump_revision(session)
    await session.flush()
    return version


class PromptExists(ValueError):
    """The project already has a prompt of that name."""


class VersionExists(ValueError):
    """The prompt already has a version with that number (seed 002's 409)."""


async def create_prompt(
    session: AsyncSession, project_id: uuid.UUID, name: str, description: str = ""
) -> Prompt:
    """A new, empty prompt; :class:`PromptExists` if the name is taken in the project."""
    taken = await session.scalar(
        select(Prompt.id).where(Prompt.project_id == project_id, Prompt.name == name)
    )
    if taken is not None:
        raise PromptExists(f"A prompt named '{name}' already exists in this project.")
    prompt = Prompt(project_id=project_id, name=name, description=description)
    session.add(prompt)
    await session.flush()
    await bump_revision(session)
    return prompt


async def lock_prompt(session: AsyncSession, prompt: Prompt) -> None:
    """Take the prompt's write lock for the rest of the transaction, by touching the row.

    Version numbering and deployment history read-then-write: on PostgreSQL this holds the
    prompt's row lock, on SQLite the database's write lock, so concurrent writers to one
    prompt queue up instead of computing the same next number.
    """
    prompt.updated_at = utcnow()
    await session.flush()


async def push_next_version(
    session: AsyncSession,
    prompt: Prompt,
    content: str,
    *,
    message: str = "",
    created_by: str = "",
    variables: list[str] | None = None,
) -> PromptVersion:
    """Append the next-numbered version under the prompt's lock."""
    await lock_prompt(session, prompt)
    return await push_version(
        session, prompt, content, message=message, created_by=created_by, variables=variables
    )


async def push_numbered_version(
    session: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    number: int,
    content: str,
    *,
    message: str = "",
    created_by: str = "",
) -> tuple[Prompt, PromptVersion]:
    """Version ``number`` of the prompt ``name`` (created if new); :class:`VersionExists`."""
    prompt = await get_or_create_prompt(session, project_id, name)
    await lock_prompt(session, prompt)
    taken = await session.scalar(
        select(PromptVersion.id).where(
            PromptVersion.prompt_id == prompt.id, PromptVersion.number == number
        )
    )
    if taken is not None:
        raise VersionExists(f"Prompt '{name}' already has a version {number}.")
    version = await push_version(
        session, prompt, content, message=message, created_by=created_by, number=number
    )
    return prompt, version
