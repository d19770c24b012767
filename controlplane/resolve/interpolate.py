"""Filling ``{{name}}`` placeholders from the resolve context.

Templates are compiled once, when the catalog loads, into literal chunks and slots, so a
render is one pass of dict lookups and a join: no regex runs per call.

Decisions:

- Names follow ``controlplane.versions.VARIABLE_PATTERN``; ``{{ user.country }}`` reads
  a nested object (see :mod:`controlplane.resolve.attributes`).
- A missing (or null) variable is left in the output exactly as written, ``{{ name }}``
  included, and its name is reported in ``missing`` (first-seen order, no repeats). The
  caller sees the gap instead of a silently blank prompt; strict callers turn a non-empty
  ``missing`` into an error (``resolve(..., strict=True)``).
- Strings are inserted as they are; any other value as compact JSON: ``true``/``false``,
  ``42``, ``42.5``, ``["a","b"]``, never Python's ``True`` or ``{'a': 1}``.
- Inserted values are not scanned again, so a value containing ``{{x}}`` stays literal
  (no template injection through the context).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.resolve.attributes import MISSING, nested, split_path
from controlplane.versions import VARIABLE_PATTERN


@dataclass(frozen=True, slots=True)
class Slot:
    """One placeholder: its variable name, path segments and the original text."""

    name: str
    path: tuple[str, ...]
    raw: str


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: ``literals[0] slot[0] literals[1] ... slot[n-1] literals[n]``."""

    source: str
    literals: tuple[str, ...]
    slots: tuple[Slot, ...]
    steps: tuple[tuple[Slot, str], ...] = field(init=False, repr=False, compare=False)
    """Each slot with the literal after it: what render walks, one pair per placeholder."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(zip(self.slots, self.literals[1:], strict=True)))

    @property
    def variables(self) -> tuple[str, ...]:
        """Variable names in first-seen order."""
        return tuple(dict.fromkeys(slot.name for slot in self.slots))

    def render(self, context: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The filled-in text and the names of the variables the context lacked."""
        if not self.slots:
            return self.source, ()
        out = [self.literals[0]]
        missing: list[str] | None = None
        for slot, literal in self.steps:
            value = context.get(slot.name)  # the whole name as a key: the usual case
            if value is None and len(slot.path) > 1:
                value = nested(context, slot.path)
            if value is None or value is MISSING:
                out.append(slot.raw)
                if missing is None:
                    missing = [slot.name]
                elif slot.name not in missing:
                    missing.append(slot.name)
            else:
                out.append(value if type(value) is str else to_text(value))
            out.append(literal)
        return "".join(out), (tuple(missing) if missing else ())


def compile_template(content: str) -> Template:
    """Split ``content`` at its placeholders, once."""
    literals: list[str] = []
    slots: list[Slot] = []
    start = 0
    for match in VARIABLE_PATTERN.finditer(content):
        literals.append(content[start : match.start()])
        name = match.group(1)
        slots.append(Slot(name, split_path(name), match.group(0)))
        start = match.end()
    literals.append(content[start:])
    return Template(content, tuple(literals), tuple(slots))


def to_text(value: Any) -> str:
    """A context value as prompt text: strings verbatim, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: ints past 64 bits, non-JSON objects
        return str(value)
