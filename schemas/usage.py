"""Usage links (seed 002): the body of ``POST /dashboard/prompts/usage``.

A trace (and optionally one of its spans) used version ``version`` of prompt ``name``.
Names follow seed 002's create route (``name``, ``version``). The body is closed: a
misspelt ``span_id`` would silently merge distinct links into one, so unknown fields are
refused. ``version`` must be a JSON integer, as in the create route, and at most the
largest version number the control plane stores (2^31 - 1), which the warehouse's UInt32
``version`` column holds too. ``null`` for ``span_id`` is the same as leaving it out.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

MAX_PROMPT_NAME_LENGTH = 200
MAX_VERSION_NUMBER = 2**31 - 1

PromptName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_NAME_LENGTH)]


class UsageIn(BaseModel):
    """Which prompt version a trace (and span) used."""

    model_config = ConfigDict(extra="forbid")

    name: PromptName
    version: Annotated[StrictInt, Field(ge=1, le=MAX_VERSION_NUMBER)]
    trace_id: UUID
    span_id: UUID | None = None
