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
