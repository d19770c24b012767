"""Checks that a real answer is one the API document lists for its operation."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator


def assert_documented(
    document: dict[str, Any], method: str, pattern: str, status: int, body: Any
) -> None:
    """Fail unless ``status`` is documented for the operation and ``body`` fits its schema."""
    operation = document["paths"][pattern][method.lower()]
    answer = operation["responses"].get(str(status))
    assert answer is not None, (method, pattern, status, body)
    content = answer.get("content")
    if content is None:
        assert body is None, (method, pattern, status, body)
        return
    [(media_type, described)] = content.items()
    if media_type != "application/json":
        return
    schema = {"components": document["components"], **described["schema"]}
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, (method, pattern, status, errors)


def pattern_of(document: dict[str, Any], path: str) -> str:
    """The documented path pattern (``/v1/prompts/{prompt_id}``) that ``path`` matches."""
    patterns: list[str] = list(document["paths"])
    for pattern in patterns:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", pattern), path):
            return pattern
    raise AssertionError(f"no documented path matches {path}")
