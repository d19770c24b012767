"""Deadlines of delivery futures the edge owns, kept by one timer instead of one each.

A single event awaits its record's acknowledgement for at most the ack timeout. With a
waiter future and a timer per record, that deadline cost the event loop more than the
record's send. Every deadline is the send time plus the same timeout, so deadlines come
in the order records are sent: a queue, and one timer at its head, fail the futures still
pending at their deadline (their clients get 503). Only for futures the edge made itself
(librdkafka's, settled by ``ingest.confluent_producer``, which skips a future already
done): aiokafka settles its own and must not find them done.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Deadlines:
    """Fails each watched future still pending at its deadline with ``TimeoutError``."""

    def __init__(self) -> None:
        self._queue: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, loop: asyncio.AbstractEventLoop, deadline: float, future: Any) -> None:
        """Fail ``future`` at ``deadline`` (loop time, not before any watched earlier)."""
        self._queue.append((deadline, future))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the settled futures at the head, fail the overdue ones; wait for the next."""
        self._timer = None
        queue, now = self._queue, loop.time()
        while queue:
            deadline, future = queue[0]
            if not future.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire, loop)
                    return
                future.set_exception(TimeoutError("not acknowledged in time"))
            queue.popleft()
