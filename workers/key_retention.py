"""How far back the duplicate lookup's key table holds every stored event, read from it.

``promptline migrate`` keeps ``dedup_keys`` as long as ``worker_dedup_window_days`` needs
(``sql/key_retention.py``), and states in the table's comment the period it holds
completely. A worker does not derive that period from its own settings: it reads what the
table states (and its TTL), again every ``REREAD_SECONDS``, so a worker started with other
settings than the last migrate's never trusts keys the table does not hold. What the key
table cannot answer for is looked up in the raw tables.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sql.key_retention import KEY_TABLE, SETTLE_SECONDS, trusted_days

REREAD_SECONDS = SETTLE_SECONDS / 2
"""How long a period read is trusted: migrate waits twice that before the TTL shrinks, so a
flush that read the old period just before has long finished."""
NOTHING_KEPT = timedelta(0)
"""What a missing key table counts as: every lookup then reads the raw tables."""

Rows = Callable[[str, dict[str, Any]], Awaitable[Sequence[Sequence[Any]]]]


class KeyRetention:
    """The key table's period, read at first use and again every ``REREAD_SECONDS``."""

    def __init__(self, rows: Rows, clock: Callable[[], float] = time.monotonic) -> None:
        self._rows = rows
        self._clock = clock
        self._kept: timedelta | None = NOTHING_KEPT
        self._read_at: float | None = None

    async def kept(self) -> timedelta | None:
        """How far back ``dedup_keys`` holds every key by receive time (None: forever)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= REREAD_SECONDS:
            found = await self._rows(
                "SELECT engine_full, comment FROM system.tables"
                " WHERE database = currentDatabase() AND name = {name:String}",
                {"name": KEY_TABLE},
            )
            if found:
                days = trusted_days(str(found[0][0]), str(found[0][1]))
                self._kept = None if days is None else timedelta(days=days)
            else:
                self._kept = NOTHING_KEPT
            self._read_at = now
        return self._kept
