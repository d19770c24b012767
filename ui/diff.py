"""Line-by-line diff between two prompt versions, for the dashboard's version pages.

Text is kept raw: the templates escape it, so this module stays free of HTML.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DiffKind = Literal["same", "added", "removed"]


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a diff; a number is None on the side the line is missing from."""

    kind: DiffKind
    old_number: int | None
    new_number: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Stands for ``count`` unchanged lines hidden by :func:`collapse`."""

    count: int


@dataclass(frozen=True, slots=True)
class DiffSummary:
    """Counts shown beside a diff ("+3 -1") so a reader sees its size before reading it."""

    added: int
    removed: int


def line_diff(old: str, new: str) -> list[DiffLine]:
    """Every line of both texts, in reading order, marked same, added or removed.

    ``splitlines`` also splits on "\\r\\n" and "\\r", so no line keeps a trailing "\\r" (a
    prompt pasted from Windows would otherwise differ on every line). A replaced block gives
    its removed lines, then its added ones, as a reader compares them. ``autojunk`` is off:
    its heuristic would treat frequent lines (blank ones) as junk in prompts over 200 lines.
    """
    a = old.splitlines()
    b = new.splitlines()
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(DiffLine("same", i + 1, i - i1 + j1 + 1, a[i]) for i in range(i1, i2))
            continue
        if tag in ("delete", "replace"):
            out.extend(DiffLine("removed", i + 1, None, a[i]) for i in range(i1, i2))
        if tag in ("insert", "replace"):
            out.extend(DiffLine("added", None, j + 1, b[j]) for j in range(j1, j2))
    return out


def summarize(lines: Sequence[DiffLine]) -> DiffSummary:
    """How many lines were added and removed (a changed line counts once each way)."""
    added = sum(1 for line in lines if line.kind == "added")
    removed = sum(1 for line in lines if line.kind == "removed")
    return DiffSummary(added=added, removed=removed)


def collapse(lines: Sequence[DiffLine], context: int = 3) -> list[DiffLine | Skipped]:
    """The diff as hunks: unchanged lines more than ``context`` lines from a change are skipped.

    A long prompt with one edited line then shows that line and its surroundings, not the
    whole text. With no change at all, every line is skipped (one ``Skipped``).
    """
    if context < 0:
        raise ValueError(f"context must be at least 0, not {context}")
    n = len(lines)
    distance = [math.inf] * n
    last: int | None = None
    for i, line in enumerate(lines):
        if line.kind != "same":
            last = i
        if last is not None:
            distance[i] = i - last
    last = None
    for i in range(n - 1, -1, -1):
        if lines[i].kind != "same":
            last = i
        if last is not None:
            distance[i] = min(distance[i], last - i)

    out: list[DiffLine | Skipped] = []
    hidden = 0
    for line, d in zip(lines, distance, strict=True):
        if d <= context:
            if hidden:
                out.append(Skipped(hidden))
                hidden = 0
            out.append(line)
        else:
            hidden += 1
    if hidden:
        out.append(Skipped(hidden))
    return out
