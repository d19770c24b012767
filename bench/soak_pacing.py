"""The open-loop schedule and the per-minute tally of the soak's generator.

Request ``n`` is due at ``start + n / rate`` whatever became of the earlier ones, and its
latency counts from that due time, not from when it was sent: a service that slows down
cannot slow the load and so hide its slowness (coordinated omission). A ticker asks
:func:`due_count` how many requests are due so far and sends the new ones in one loop
iteration, instead of a timer per request.
"""

from __future__ import annotations

import heapq
import math
from typing import Any


def due_count(elapsed: float, rate: float, total: int) -> int:
    """Requests due ``elapsed`` seconds after the start: n is due at n / rate (n from 0)."""
    if elapsed < 0:
        return 0
    return min(total, math.floor(elapsed * rate) + 1)


def due_time(start: float, sequence: int, rate: float) -> float:
    """When request ``sequence`` is due."""
    return start + sequence / rate


def next_tick(now: float, start: float, tick: float) -> float:
    """The first tick after ``now`` on the grid ``start + k * tick``.

    Ticks keep to the grid however late a wake-up came (sleeping ``tick`` after each would
    drift, and the selector rounds a sleep up to whole milliseconds).
    """
    return start + (math.floor((now - start) / tick) + 1) * tick


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values (nan when there are none)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Tally:
    """One interval's counts and latencies; :meth:`close` gives its line and starts anew.

    A minute's requests are those sent in it; its 2xx, failures and latencies are those
    answered (or given up) in it, so an answer late across a minute's end counts in the next.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        self.ok_events = 0
        self.errors = 0
        self.event_latencies: list[float] = []
        """The analytics events' alone (they wait for the broker's ack; resolves do not)."""
        self.resolve_latencies: list[float] = []

    def _reset(self) -> None:
        self.sent = self.ok = self.ok_events = self.errors = 0
        self.event_latencies = []
        self.resolve_latencies = []

    def answered(self, latency: float, ok: bool, event: bool) -> None:
        """An answer (``ok``: 2xx) or a failure, ``latency`` seconds after its due time."""
        (self.event_latencies if event else self.resolve_latencies).append(latency)
        if ok:
            self.ok += 1
            self.ok_events += event
        else:
            self.errors += 1

    def close(self, number: int, cpu_seconds: float, elapsed: float) -> dict[str, Any]:
        """The interval's JSON line (``number`` 0: the drain after the last minute)."""
        events, resolves = self.event_latencies, self.resolve_latencies
        events.sort()
        resolves.sort()
        latencies = list(heapq.merge(events, resolves))  # all requests: the two kinds together
        line: dict[str, Any] = {
            "minute": number,
            "sent": self.sent,
            "ok": self.ok,
            "ok_events": self.ok_events,
            "errors": self.errors,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
            "resolve_p99_ms": percentile(resolves, 0.99) * 1000,
            "event_p99_ms": percentile(events, 0.99) * 1000,
            "generator_cpu": cpu_seconds / elapsed,
            "generator_us_per_request": cpu_seconds / self.sent * 1e6 if self.sent else None,
        }
        self._reset()
        return line
