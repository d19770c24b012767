"""Client idempotency keys: what a retried event carries so it is stored once.

A key is 1 to 255 printable ASCII characters (``Idempotency-Key`` is an HTTP header on
the single-event routes, so it must survive as one). Deduplication happens downstream:
the warehouse keeps one row per key.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

IdempotencyKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH, pattern=IDEMPOTENCY_KEY_PATTERN
    ),
]


def idempotency_key_problem(value: str) -> str | None:
    """Why ``value`` is not a valid key, or None if it is."""
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters long"
    if not _KEY.match(value):
        return "must be printable ASCII characters"
    return None
