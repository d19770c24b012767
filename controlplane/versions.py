"""Facts derived from a version's content: its hash and its template variables."""

from __future__ import annotations

import hashlib
import re

VARIABLE_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def content_hash(content: str) -> str:
    """``sha256:<hex>`` of the UTF-8 content: the version's identity across systems."""
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def find_variables(content: str, declared: list[str] | None = None) -> list[str]:
    """Variables in ``{{name}}`` placeholders plus any declared ones, first-seen order."""
    seen: dict[str, None] = {}
    for name in declared or []:
        seen.setdefault(name, None)
    for match in VARIABLE_PATTERN.finditer(content):
        seen.setdefault(match.group(1), None)
    return list(seen)
