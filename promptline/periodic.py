"""A background task that runs one piece of work every N seconds until it is stopped.

The catalog watcher, the edge's key housekeeping and others share this shape: run, log a
failure and carry on (the next round retries), sleep, repeat; stopping cancels whatever
the round is doing and waits for it to unwind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished unwinding."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Periodic:
    """Runs ``work`` every ``every_seconds``; a failing round is logged, not fatal."""

    def __init__(
        self,
        name: str,
        every_seconds: float,
        work: Callable[[], Awaitable[object]],
        *,
        failure: str,
        first_at_once: bool = True,
    ) -> None:
        self._name = name
        self._every = every_seconds
        self._work = work
        self._failure = failure
        self._first_at_once = first_at_once
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the rounds (the first one at once, or after one interval)."""
        if self._task is None:
            self._task = asyncio.create_task(self._rounds(), name=self._name)

    async def stop(self) -> None:
        """Stop the rounds, whatever one is doing."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _rounds(self) -> None:
        if not self._first_at_once:
            await asyncio.sleep(self._every)
        while True:
            try:
                await self._work()
            except Exception:
                log.exception("%s", self._failure)
            await asyncio.sleep(self._every)
