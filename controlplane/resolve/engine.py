"""Resolve: which version a user gets, and its content filled in from the context.

Pure and in-memory: one dict lookup for the prompt, the rules' checks, at most two hashes,
a bisect and a template render. It never touches the database; the catalog it reads is
swapped whole by ``CatalogWatcher`` when the control plane changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controlplane.resolve.errors import MissingVariablesError
from controlplane.resolve.traffic import format_version

if TYPE_CHECKING:  # the catalog imports this package, so only for annotations
    from controlplane.catalog import Catalog


@dataclass(slots=True)
class Resolution:
    """The answer to one resolve; treat it as read-only.

    Not ``frozen``: a frozen dataclass sets each field through ``object.__setattr__``,
    which more than doubles construction time on the hottest path.
    """

    prompt_id: uuid.UUID
    prompt_name: str
    version_number: int
    version_id: uuid.UUID
    content_hash: str
    content: str
    """The version's content with the context's variables filled in."""
    traffic_rule: str
    """The rule name, the deployment's label (or ``dep_<hex>`` id), or ``"latest"``."""
    deployment_id: uuid.UUID | None
    """None when the prompt was never deployed and its latest version was served."""
    missing_variables: tuple[str, ...]
    """Variables the context lacked; their placeholders were left in ``content`` as-is."""
    by_split: bool
    """Whether the deployment's weighted split decided the version (not a targeting rule,
    and not a never-deployed prompt's latest version): what the sample-ratio check counts."""

    @property
    def version(self) -> str:
        """The version as seed 001 spells it: ``v4``."""
        return format_version(self.version_number)


def resolve(
    catalog: Catalog,
    project_id: uuid.UUID,
    prompt_name: str,
    user_id: str,
    context: Mapping[str, Any],
    strict: bool = False,
) -> Resolution | None:
    """The version ``user_id`` gets of the project's prompt ``prompt_name``.

    None if the project has no such prompt, or it has nothing to serve (no version yet, or
    a deployment that failed to load; the catalog logs why). With ``strict``, a context that
    lacks a variable of the chosen version raises :class:`MissingVariablesError`.
    """
    entry = catalog.prompt_by_name(project_id, prompt_name)
    if entry is None or entry.routing is None:
        return None
    routing = entry.routing
    number, traffic_rule = routing.route(user_id, context)
    # ``route`` returns the routing's own label object when no rule admitted the user.
    version = routing.versions[number]
    content, missing = version.template.render(context)
    if strict and missing:
        raise MissingVariablesError(missing)
    return Resolution(  # by position: keywords cost a dataclass __init__ twice as much
        entry.id,
        entry.name,
        number,
        version.id,
        version.content_hash,
        content,
        traffic_rule,
        routing.deployment_id,
        missing,
        traffic_rule is routing.traffic_rule and routing.deployment_id is not None,
    )
