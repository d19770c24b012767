"""Waits before a retry: exponential backoff with jitter, never shorter than Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Backoff:
    """The wait before retry number ``attempt`` (1 for the first retry).

    The ceiling doubles from ``base`` up to ``cap``; the wait is drawn from the upper half
    of it (as the edge's own Kafka producer does), so that many clients that failed
    together do not come back together. A server's ``Retry-After`` is a floor: the wait
    is at least that, spread over up to 20% more for the same reason.
    """

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt``, at least ``retry_after`` if given."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 60))
        wait = ceiling / 2 + ceiling / 2 * self._rng()
        if retry_after is not None and retry_after > 0:
            wait = max(wait, retry_after * (1.0 + 0.2 * self._rng()))
        return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
