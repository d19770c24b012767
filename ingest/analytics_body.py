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
from schemas.domains import COST_USD, LATENCY_MS, SCORE, Domain
from schemas.idempotency import MAX_IDEMPOTENCY_KEY_LENGTH
from schemas.usage import MAX_PROMPT_NAME_LENGTH

MAX_VERSION_HASH_LENGTH = 128
"""``AnalyticsEventIn.version_hash``'s ``max_length``."""
BATCH_FIELDS = frozenset(AnalyticsEventIn.model_fields) | {"type"}
"""What a batch's analytics event may hold (its model forbids anything else)."""


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
    if not (_held(latency, LATENCY_MS) and _held(cost, COST_USD) and _held(score, SCORE)):
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


def _held(value: object, domain: Domain) -> bool:
    """Absent, or a float (not an int: the model's verdict on those is its own) in ``domain``."""
    return value is None or (type(value) is float and domain.holds(value))
