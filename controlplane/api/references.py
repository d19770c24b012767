"""Finding the prompt or version a request names, in any of the forms the families use.

A prompt is named by ``prm_<hex>`` (seed 001), ``pmt_<hex>`` (seed 000), ``tmpl-<uuid>``
(seed 003), its bare UUID, or its name; ids are tried first, then the name, so a prompt
whose name happens to look like an id is still found. A version is named by its number
(``4``, ``"4"``, ``"v4"``), its content hash (``sha256:<64 hex>``; the newest version with
that content when several share it), or its id (``ver_<hex>``, ``ver-<uuid>``, UUID).

Lookups are scoped to the caller's project: another project's prompt is simply not found.
References that cannot name anything (too long, NUL bytes, numbers past the column's
range) are answered "not found" without a query, so they never reach the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.catalog import Catalog, PromptEntry
from controlplane.ids import IdShape, decode
from controlplane.store.models import Prompt, PromptVersion

MAX_NAME_LENGTH = 200
MAX_VERSION_NUMBER = 2**31 - 1
"""The largest number the ``prompt_versions.number`` column (a 32-bit INTEGER) holds."""

_NUMBER = re.compile(r"[vV]?([0-9]+)")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")

PROMPT_ID_SHAPES = (IdShape.PROMPT, IdShape.SIGNAL_PROMPT, IdShape.TEMPLATE)
VERSION_ID_SHAPES = (IdShape.VERSION, IdShape.TEMPLATE_VERSION)


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A parsed version reference: exactly one of its fields is set."""

    number: int | None = None
    content_hash: str | None = None
    version_id: uuid.UUID | None = None


def parse_version_ref(ref: str | int) -> VersionRef | None:
    """The reference ``ref`` spells, or None if it is not a version reference at all.

    Numbers must be at least 1; a number past the column's range parses (it is well
    formed) but can name no version, which :func:`find_version` answers without a query.
    """
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return VersionRef(number=ref) if ref >= 1 else None
    text = ref.strip()
    if match := _NUMBER.fullmatch(text):
        digits = match.group(1).lstrip("0") or "0"
        # Past the column's range every number is alike; never parse thousands of digits.
        number = int(digits) if len(digits) <= 12 else MAX_VERSION_NUMBER + 1
        return VersionRef(number=number) if number >= 1 else None
    if _HASH.fullmatch(text):
        return VersionRef(content_hash=text)
    version_id = decode(text, *VERSION_ID_SHAPES)
    return VersionRef(version_id=version_id) if version_id is not None else None


def usable_name(text: str) -> bool:
    """Whether ``text`` could be a stored name (so it is worth a query)."""
    return 0 < len(text) <= MAX_NAME_LENGTH and "\x00" not in text


async def find_prompt(session: AsyncSession, project_id: uuid.UUID, ref: str) -> Prompt | None:
    """The project's prompt that ``ref`` names (id of any family, UUID or name)."""
    if not usable_name(ref):
        return None
    prompt_id = decode(ref, *PROMPT_ID_SHAPES)
    if prompt_id is not None:
        prompt = await session.scalar(
            select(Prompt).where(Prompt.id == prompt_id, Prompt.project_id == project_id)
        )
        if prompt is not None:
            return prompt
    return await session.scalar(
        select(Prompt).where(Prompt.project_id == project_id, Prompt.name == ref)
    )


async def find_version(
    session: AsyncSession, prompt_id: uuid.UUID, ref: VersionRef
) -> PromptVersion | None:
    """The prompt's version that ``ref`` names."""
    query = select(PromptVersion).where(PromptVersion.prompt_id == prompt_id)
    if ref.number is not None:
        if ref.number > MAX_VERSION_NUMBER:
            return None
        query = query.where(PromptVersion.number == ref.number)
    elif ref.content_hash is not None:
        query = query.where(PromptVersion.content_hash == ref.content_hash)
    elif ref.version_id is not None:
        query = query.where(PromptVersion.id == ref.version_id)
    else:
        return None
    return await session.scalar(query.order_by(PromptVersion.number.desc()).limit(1))


def prompt_in_catalog(catalog: Catalog, project_id: uuid.UUID, ref: str) -> PromptEntry | None:
    """The project's prompt that ``ref`` names (id of any family, UUID or name), from memory.

    Another project's prompt is None, as if it did not exist.
    """
    return _prompt_by_id(catalog, project_id, ref) or catalog.prompt_by_name(project_id, ref)


def prompt_name_in_catalog(catalog: Catalog, project_id: uuid.UUID, ref: str) -> str:
    """The name behind a prompt id of the caller's project, else ``ref`` itself (a name).

    Resolve takes a name; this lets it take an id too without a database query.
    """
    entry = _prompt_by_id(catalog, project_id, ref)
    return entry.name if entry is not None else ref


def _prompt_by_id(catalog: Catalog, project_id: uuid.UUID, ref: str) -> PromptEntry | None:
    prompt_id = decode(ref, *PROMPT_ID_SHAPES)
    return catalog.prompt(project_id, prompt_id) if prompt_id is not None else None
