"""Exposures: one resolve answer given to one unit (a user), as the batch route takes it.

Resolve records an exposure for every answer (in the background); a client that resolves
on its own side (an SDK with the catalog cached) reports its exposures in a batch, with
``"type": "exposure"`` and the fields here. The edge computes the stored unit id from
``user_id`` exactly as resolve does (``promptline.units``), so both sources count the same
user as the same unit. The Kafka record is ``schemas.records.ExposureRecord``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from schemas.idempotency import IdempotencyKey
from schemas.usage import MAX_VERSION_NUMBER, PromptReference

MAX_UNIT_ID_LENGTH = 1_000
"""A stored unit id: a keyed hash (32 hex digits) or, if configured, the user id as given
(resolve takes user ids of up to 1,000 characters)."""
MAX_RULE_LENGTH = 200
"""A ``traffic_rule``: a rule's name or a deployment's label (both at most 200), ``dep_<hex>``
or ``latest``."""
MAX_USER_ID_LENGTH = 1_000
"""As resolve takes ``user_id`` (``controlplane/api/resolve_io.py``)."""
CONTENT_HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"

ExposureSource = Literal["resolve", "client"]
"""Who decided the version: resolve itself, or a client resolving on its own side."""

_VERSION_TEXT = re.compile(r"\s*[vV]?([0-9]{1,12})\s*")


def _version_number(value: Any) -> Any:
    """``"v4"`` or ``"4"`` as 4; anything else as sent, for the integer check to judge."""
    if isinstance(value, str):
        match = _VERSION_TEXT.fullmatch(value)
        if match is not None:
            return int(match.group(1))
    return value


def _iso_time(value: Any) -> Any:
    """An ISO 8601 string as an aware time (UTC without an offset); else as sent (refused)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return value


VersionNumber = Annotated[
    StrictInt,
    BeforeValidator(_version_number),
    Field(
        ge=1,
        le=MAX_VERSION_NUMBER,
        description='The version number served: `4`, or `"v4"` / `"4"`.',
    ),
]


class ExposureEventIn(BaseModel):
    """An exposure a client reports in a batch: which version it served to which user."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["exposure"]
    prompt_id: PromptReference
    version: VersionNumber
    content_hash: (
        Annotated[
            StrictStr,
            Field(
                max_length=128,
                description="The version's content hash; if given it must be that version's.",
            ),
        ]
        | None
    ) = None
    deployment_id: (
        Annotated[
            StrictStr,
            Field(
                min_length=1,
                max_length=100,
                description="The deployment that decided (`dep_<32 hex>` or its UUID); absent or "
                "null when the prompt was never deployed.",
            ),
        ]
        | None
    ) = None
    traffic_rule: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=MAX_RULE_LENGTH,
            description="The `traffic_rule` resolve answered (a rule's name, the deployment's "
            "label or id, or `latest`).",
        ),
    ]
    split: StrictBool = Field(
        default=False,
        description="True when the deployment's weighted split chose the version, false when "
        "a targeting rule (or `latest`) did.",
    )
    user_id: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=MAX_USER_ID_LENGTH,
            description="The user, as sent to resolve; stored as the unit id resolve stores.",
        ),
    ]
    resolved_at: (
        Annotated[
            datetime,
            BeforeValidator(_iso_time),
            Field(
                strict=True,  # a string only: a number would be read as a Unix time
                description="When the client resolved (ISO 8601; UTC without an offset); default "
                "now. At most a day ahead, and within the exposure retention.",
            ),
        ]
        | None
    ) = None
    idempotency_key: IdempotencyKey | None = None
