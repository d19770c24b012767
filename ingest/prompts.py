"""Finding the prompt an event is about, in the caller's project only.

Another project's prompt is reported exactly like one that does not exist (404), so
keys cannot probe other tenants. Everything is read from the in-memory catalog, and the
prompts found are kept per catalog snapshot: decoding a reference's id shapes cost an
event more than the rest of its lookups, and events name few prompts, over and over.
"""

from __future__ import annotations

from controlplane.api.references import prompt_in_catalog
from controlplane.catalog import Catalog, Principal, PromptEntry, VersionEntry
from promptline.http.errors import ApiError, ErrorKind

_SHOWN = 80
FOUND_KEPT = 10_000
"""Prompts kept by (project, reference) before the cache starts over."""


class _Found:
    """The prompts found in one catalog snapshot, by project (as an int) and reference."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self.prompts: dict[tuple[int, str], PromptEntry] = {}


_FOUND = _Found()


def prompt_by_reference(
    catalog: Catalog, principal: Principal, reference: str, field: str
) -> PromptEntry:
    """The prompt named by ``pmt_<hex>``, ``prm_<hex>``, ``tmpl-<uuid>``, a UUID, or its name."""
    cache = _FOUND
    if cache.catalog is not catalog:  # a reload replaces the snapshot whole
        cache.catalog, cache.prompts = catalog, {}
    found = (principal.project_id.int, reference)
    prompt = cache.prompts.get(found)
    if prompt is not None:
        return prompt
    prompt = prompt_in_catalog(catalog, principal.project_id, reference)
    if prompt is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{reference[:_SHOWN]}' not found in your organisation.",
            field=field,
        )
    if len(cache.prompts) >= FOUND_KEPT:
        cache.prompts = {}
    cache.prompts[found] = prompt
    return prompt


def version_by_number(prompt: PromptEntry, number: int, field: str) -> VersionEntry:
    """Version ``number`` of ``prompt``."""
    version = prompt.versions_by_number.get(number)
    if version is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt.name[:_SHOWN]}' has no version {number}.",
            field=field,
        )
    return version


def version_by_hash(prompt: PromptEntry, content_hash: str, field: str) -> VersionEntry:
    """The version of ``prompt`` whose content hash is ``content_hash``."""
    version = prompt.versions_by_hash.get(content_hash)
    if version is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt.name[:_SHOWN]}' has no version with hash {content_hash[:_SHOWN]}.",
            field=field,
        )
    return version
