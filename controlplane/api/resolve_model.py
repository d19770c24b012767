"""Resolve's body and answer as pydantic models, for the API document.

The route parses its body by hand (``resolve_io``, compiled in release builds, where no
pydantic model may live); this model describes the same body, and a test holds the two
together: same fields, and every body the model accepts the fast parser accepts.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from controlplane.api.references import MAX_NAME_LENGTH
from controlplane.api.resolve_io import MAX_USER_ID_LENGTH


class ResolveIn(BaseModel):
    """Which prompt, for which user, with which template variables."""

    model_config = ConfigDict(extra="ignore")

    prompt: Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    """The prompt's name or any of its ids."""
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_USER_ID_LENGTH)]
    """The same user always gets the same version."""
    context: dict[str, Any] | None = None
    """Values for the content's ``{{variables}}``, and attributes targeting rules read."""
    strict: StrictBool | None = None
    """True: a template variable missing from ``context`` is a 400."""


class ResolveOut(BaseModel):
    """The version served to this user, its content filled in."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    version: str
    content: str
    resolved_at: str
    traffic_rule: str
    prompt_id: str
    prompt_uuid: str
    version_id: str
    content_hash: str
    deployment_id: str | None
    missing_variables: list[str]
