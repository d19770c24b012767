"""Reading a value out of a resolve context by name, shared by rules and templates.

A name is first looked up as a literal key (``"a.b"`` may be a key of its own), then, if it
has dots, as a path into nested objects. A JSON ``null`` counts as absent everywhere, so
``{"locale": null}`` behaves exactly like a context without ``locale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

MISSING: Final = object()
"""Returned for an absent (or null) value; compare with ``is``."""


def split_path(name: str) -> tuple[str, ...]:
    """The path segments of a dotted name, computed once when a rule or template compiles."""
    return tuple(name.split("."))


def nested(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` (a dotted name's segments) in nested objects, or :data:`MISSING`.

    The second step of a lookup: rules and templates first try the whole name as a key
    (``context.get(name)``, inline on the hot path), and only a dotted name they did not
    find comes here.
    """
    value = context.get(path[0])
    for part in path[1:]:
        if not isinstance(value, dict):
            return MISSING
        value = value.get(part)
    return MISSING if value is None else value
