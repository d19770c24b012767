"""Exact moving-window counters in process memory, for the rate limiter's hot path.

``limits``' in-memory moving window costs more than resolve itself: an ``asyncio.Lock``
per call, a list insert at the front (O(calls in the window)), and an expiry task that
hops to a thread for every key, over and over while traffic flows. Same semantics here
for a fraction of that: a call is counted if fewer than ``amount`` calls were counted in
the last ``seconds``, and a refused call learns exactly when the oldest of them leaves the
window. One deque of timestamps per counter (at most ``amount`` long), no lock (the event
loop runs one call at a time and nothing here awaits), no background task: idle counters
are swept inline, at most once per ``sweep_seconds``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

SWEEP_SECONDS = 60.0


class Window:
    """The timestamps of one counter's calls in its window, oldest first."""

    __slots__ = ("calls", "seconds")

    def __init__(self, seconds: float) -> None:
        self.calls: deque[float] = deque()
        self.seconds = seconds

    def hit(self, now: float, amount: int) -> float | None:
        """Count a call at ``now``: None if it fits, else the seconds until one would."""
        calls = self.calls
        cutoff = now - self.seconds
        while calls and calls[0] < cutoff:
            calls.popleft()
        if len(calls) < amount:
            calls.append(now)
            return None
        if not calls:  # amount is 0: nothing is ever allowed
            return self.seconds
        return calls[0] + self.seconds - now


class MovingWindows:
    """Counters by key; ``hit`` counts a call or says how long until one would be.

    A caller that counts against the same counters again and again (the rate limiter's
    per-key plans) can hold the :class:`Window` objects themselves (``window``), call
    ``tick`` once per call for the time, and rebuild what it holds whenever
    ``generation`` changes: a sweep dropped counters, so a held one may be orphaned.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self._clock = clock
        self._sweep_seconds = sweep_seconds
        self._next_sweep = clock() + sweep_seconds
        self._windows: dict[Hashable, Window] = {}
        self.generation = 0
        """Bumped by every sweep that drops a counter."""

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: Hashable, amount: int, seconds: float) -> float | None:
        """Count a call: None if it fits, else the seconds until the window has room.

        ``key`` must name one (amount, seconds) pair: callers put both in it.
        """
        now = self.tick()
        return self.window(key, seconds).hit(now, amount)

    def tick(self) -> float:
        """The time now, having swept idle counters first if a sweep is due."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        return now

    def window(self, key: Hashable, seconds: float) -> Window:
        """The counter named ``key``, made empty if it does not exist yet."""
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = Window(seconds)
        return window

    def clear(self) -> None:
        """Forget every counter."""
        self._windows.clear()
        self.generation += 1

    def _sweep(self, now: float) -> None:
        """Drop counters whose every call has left the window."""
        idle = [
            key
            for key, window in self._windows.items()
            if not window.calls or window.calls[-1] < now - window.seconds
        ]
        for key in idle:
            del self._windows[key]
        if idle:
            self.generation += 1
        self._next_sweep = now + self._sweep_seconds
