"""The error envelope every HTTP route answers with (seed 001's shape)."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Machine-readable ``code`` and human-readable ``message``, plus a docs link."""

    code: str
    message: str
    docs: str | None = None
    field: str | None = None


class ErrorEnvelope(BaseModel):
    """``{"error": {...}}``: the whole body of an error response."""

    error: ErrorBody
