"""Turning pydantic's validation errors into one sentence a client can act on."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """The first problem as (field path, sentence)."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return field, f"{field}: {first['msg']}"
