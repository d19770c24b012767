"""Feedback signals (seed 000): the body of ``POST /api/v1/prompts/:prompt_id/signals``.

The seed's body is closed (``value`` and ``metadata``) and everything custom belongs in
``metadata``, so an unknown top-level field is refused: it is almost always a typo that
would otherwise drop data silently. ``metadata`` is arbitrary JSON within bounds that
keep one signal small on Kafka and in ClickHouse: at most 32 top-level keys, nesting at
most 5 deep, at most 8 KiB as compact JSON. The keys the workers copy into columns
(``version``, ``version_hash``, ``trace_id``) must hold what those columns can store
(``schemas.signal_columns``). ``null`` for ``metadata`` is the same as leaving it out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict

from schemas.signal_columns import check_named_columns

METADATA_MAX_BYTES = 8192
METADATA_MAX_KEYS = 32
METADATA_MAX_DEPTH = 5

SignalValue = Literal["positive", "negative"]


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value (a scalar is 0), counted no further than ``limit + 1``."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    if limit < 0:
        return 1
    return 1 + max((json_depth(child, limit - 1) for child in children), default=0)


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse metadata that is too wide, too deep or too large, saying which limit."""
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"has {len(value)} keys; at most {METADATA_MAX_KEYS} are allowed")
    depth = json_depth(value, METADATA_MAX_DEPTH)
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"nests deeper than {METADATA_MAX_DEPTH} levels")
    size = len(orjson.dumps(value))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {METADATA_MAX_BYTES} are allowed")
    return value


Metadata = Annotated[
    dict[str, Any], AfterValidator(check_metadata), AfterValidator(check_named_columns)
]


class SignalIn(BaseModel):
    """A thumbs up or down on one of a prompt's outputs, with the client's own metadata."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: SignalValue
    metadata: Metadata | None = None
