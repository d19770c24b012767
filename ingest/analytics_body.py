"""An analytics event's usual body checked by hand; anything else goes to the model.

Validating with ``AnalyticsEventIn`` costs more than the rest of a single event's own
work, and nearly every body is the same shape: two strings and a few floats. So
:func:`checked_analytics` accepts exactly such a body (strings of the model's lengths,
numbers that are floats within their domains, a printable ASCII key) and answers None for
anything else, which the caller validates with the model: every refusal, and its message,
still comes from the model. A hypothesis test holds the two equal, value and type, on
valid and subtly invalid bodies, for the route and for a batch's events.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from schemas.analytics import AnalyticsEventIn
from schemas.domains import COST_USD, LATENCY_MS, SCORE, SMALLEST_MAGNITUDE
from schemas.idempotency import MAX_IDEMPOTENCY_KEY_LENGTH
from schemas.usage import MAX_PROMPT_NAME_LENGTH

MAX_VERSION_HASH_LENGTH = 128
"""``AnalyticsEventIn.version_hash``'s ``max_length``."""
BATCH_FIELDS = frozenset(AnalyticsEventIn.model_fields) | {"type"}
"""What a batch's analytics event may hold (its model forbids anything else)."""


if LATENCY_MS.signed or COST_USD.signed or not SCORE.signed:  # what the inline checks assume
    raise ImportError("the analytics domains changed sign; update the checks below")
LATENCY_HIGH, COST_HIGH, SCORE_HIGH = LATENCY_MS.high, COST_USD.high, SCORE.high


class AnalyticsBody(NamedTuple):
    """The fields of an analytics body the edge uses, as ``AnalyticsEventIn`` has them."""

    prompt_id: str
    version_hash: str
    latency_ms: float | None
    cost_usd: float | None
    score: float | None
    idempotency_key: str | None


def checked_analytics(data: dict[str, Any], in_batch: bool = False) -> AnalyticsBody | None:
    """``data``'s fields when it is an analytics body of the usual shape, else None.

    ``in_batch``: as a batch's event (``type`` "analytics", no unknown field).
    """
    if in_batch and (data.get("type") != "analytics" or not data.keys() <= BATCH_FIELDS):
        return None
    prompt, version = data.get("prompt_id"), data.get("version_hash")
    if (
        type(prompt) is not str
        or type(version) is not str
        or not 0 < len(prompt) <= MAX_PROMPT_NAME_LENGTH
        or not 0 < len(version) <= MAX_VERSION_HASH_LENGTH
    ):
        return None
    latency, cost, score = data.get("latency_ms"), data.get("cost_usd"), data.get("score")
    if not (_unsigned(latency, LATENCY_HIGH) and _unsigned(cost, COST_HIGH) and _signed(score)):
        return None
    key = data.get("idempotency_key")
    if key is not None and not (
        type(key) is str
        and 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        and key.isascii()
        and key.isprintable()
    ):
        return None
    return AnalyticsBody(prompt, version, latency, cost, score, key)


def _unsigned(value: object, high: float) -> bool:
    """Absent, or a float (not an int: the model's verdict on those is its own) that is 0
    or from SMALLEST_MAGNITUDE to ``high``: ``Domain.holds`` of an unsigned domain, inline
    (NaN fails every comparison)."""
    return value is None or (
        type(value) is float and (value == 0 or SMALLEST_MAGNITUDE <= value <= high)
    )


def _signed(value: object) -> bool:
    """As :func:`_unsigned`, for the score's signed domain."""
    return value is None or (
        type(value) is float and (value == 0 or SMALLEST_MAGNITUDE <= abs(value) <= SCORE_HIGH)
    )
