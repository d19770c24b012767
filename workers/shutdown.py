"""Prompt shutdown: a stopping worker gives up its waits, and ends within its grace regardless.

An orchestrator sends SIGTERM and, some seconds later, SIGKILL; a worker that sits out a 30 s
backoff, or a final flush ClickHouse never answers, is killed mid-way and leaves no word of
why. So on SIGTERM the worker interrupts its retry waits at once (``ClickHouseSink.interrupt``),
and gives the final flush and the clients' stop ``worker_shutdown_grace_seconds`` in all: past
a little less than that, it cancels them, and a watchdog thread ends the process at the grace
even if the event loop cannot. Nothing is committed that way that was not stored: a flush
commits only after its blocks are in ClickHouse, so a flush given up or cancelled commits
nothing, and its records are read again by the partition's next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_PAST_GRACE = 3
"""The worker's exit status when it had to be cut short at the end of its grace."""


def cancel_allowance(grace: float) -> float:
    """The part of the grace kept for cancelling what still runs: a second, or a quarter of a
    short grace."""
    return min(1.0, grace / 4)


async def stop_within(
    work: asyncio.Task[None], stop: asyncio.Event, interrupt: Callable[[], None], grace: float
) -> bool:
    """Await ``work`` until it ends or ``stop`` is set; then ``interrupt()`` its waits and give it
    the ``grace`` (less the allowance), cancelling it past that.

    Returns whether it ended by itself; raises what it raised.
    """
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not work.done():
        interrupt()
        allowance = cancel_allowance(grace)
        await asyncio.wait({work}, timeout=grace - allowance)
    if work.done():
        work.result()
        return True
    log.error("the worker did not stop within %.1fs; cancelling it, committing nothing", grace)
    work.cancel()
    await asyncio.wait({work}, timeout=allowance / 2)
    return False


class Watchdog:
    """Ends the process ``grace`` seconds after :meth:`start`, from a thread: the last resort
    when the event loop itself cannot finish (a call that ignores cancellation)."""

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start counting (once; later calls change nothing)."""
        if self._timer is None:
            self._timer = threading.Timer(self._grace, self._exit)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        """The process ended in time: stand down."""
        if self._timer is not None:
            self._timer.cancel()

    def _exit(self) -> None:
        log.error(
            "the worker is still running %.1fs after it was told to stop; exiting", self._grace
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(EXIT_PAST_GRACE)
