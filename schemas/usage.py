"""Usage links (seed 002): the body of ``POST /dashboard/prompts/usage``.

A trace (and optionally one of its spans) used version ``version`` of prompt ``name``.
Names follow seed 002's create route (``name``, ``version``); ``name`` also takes any of
the prompt's ids, as every prompt reference does. The body is closed: a
misspelt ``span_id`` would silently merge distinct links into one, so unknown fields are
refused. ``version`` must be a JSON integer, as in the create route, and at most the
largest version number the control plane stores (2^31 - 1), which the warehouse's UInt32
``version`` column holds too. ``null`` for ``span_id`` is the same as leaving it out.

``trace_id`` and ``span_id`` are UUIDs, as the seed says, in any of Python's spellings
(hyphenated, 32 hex digits, braces, ``urn:uuid:``, any case), so an OpenTelemetry trace
id (32 hex digits) is taken as it is. An OpenTelemetry span id (16 hex digits) is taken
too, as the UUID of those 64 bits with 64 zero bits before them, so that tracers need
not invent a UUID per span.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StringConstraints

MAX_PROMPT_NAME_LENGTH = 200
MAX_VERSION_NUMBER = 2**31 - 1

PromptName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_NAME_LENGTH)]
"""A prompt's name, or any of its ids: every route that takes a prompt takes either."""

PromptReference = Annotated[
    PromptName,
    Field(
        description="The prompt: its name, or any of its ids (`prm_<32 hex>`, `pmt_<32 hex>`, "
        "`tmpl-<uuid>`, or its UUID); ids are tried first, then the name, in the key's project."
    ),
]

_SPAN_HEX = re.compile(r"[0-9a-fA-F]{16}")


def _widen_span(value: Any) -> Any:
    """An OpenTelemetry span id (16 hex digits) as 32, zeros first; anything else as sent."""
    if isinstance(value, str) and _SPAN_HEX.fullmatch(value):
        return "0" * 16 + value
    return value


SpanId = Annotated[
    UUID,
    BeforeValidator(_widen_span),
    Field(
        description="A UUID in any spelling, or an OpenTelemetry span id (16 hex digits), "
        "stored as the UUID of those 64 bits after 64 zero bits."
    ),
]
TraceId = Annotated[
    UUID,
    Field(
        description="A UUID in any spelling (hyphenated, or 32 hex digits such as an "
        "OpenTelemetry trace id)."
    ),
]


class UsageIn(BaseModel):
    """Which prompt version a trace (and span) used."""

    model_config = ConfigDict(extra="forbid")

    name: PromptReference
    version: Annotated[StrictInt, Field(ge=1, le=MAX_VERSION_NUMBER)]
    trace_id: TraceId
    span_id: SpanId | None = None
