"""Deleting the idempotency keys of past months, in the background of each edge process.

A key is remembered for the UTC month it was charged in (``ingest.quota_claims``): a
retry in a later month is charged to that month, so earlier months' rows are never read
again. Every process deletes them at start and then every hour; any number of processes
may do it at once (they delete the same rows), and a failure only waits for the next
round. This keeps the reservation path free of the delete, which at a month's turn may
remove many rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.quota import month_of
from ingest.signal_key_rows import drop_months_before
from promptline.periodic import Periodic

log = logging.getLogger(__name__)

EVERY_SECONDS = 3600.0


class KeyHousekeeping:
    """A background task that drops past months' signal idempotency keys."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], every_seconds: float = EVERY_SECONDS
    ) -> None:
        self._sessions = sessions
        self._rounds = Periodic(
            "signal-key-housekeeping",
            every_seconds,
            self.run_once,
            failure="could not delete past months' signal keys",
        )

    def start(self) -> None:
        """Start the rounds (the first one at once)."""
        self._rounds.start()

    async def stop(self) -> None:
        """Stop the rounds, whatever one is doing (a cut-short delete is rolled back)."""
        await self._rounds.stop()

    async def run_once(self) -> int:
        """Delete the keys of every month before the current one; how many were deleted."""
        month = month_of(datetime.now(UTC))
        async with self._sessions() as session, session.begin():
            dropped = await drop_months_before(session, month)
        if dropped:
            log.info("deleted %d signal idempotency keys of months before %s", dropped, month)
        return dropped
