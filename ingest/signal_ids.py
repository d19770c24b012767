"""Integer signal ids (seed 000 answers ``"id": 789``) without a database round trip.

An id is 53 bits, so JavaScript's ``Number`` holds every one exactly
(``Number.MAX_SAFE_INTEGER`` is 2^53 - 1), laid out like a snowflake::

    | 37 bits: 10 ms ticks since 2026-01-01 UTC | 8 bits: node | 8 bits: sequence |

- *Time first*, so ids sort by the time the edge accepted the signal (to 10 ms); 37 bits
  of 10 ms ticks last until 2069.
- *Node*: each edge process leases one of 256 node numbers from the control-plane store
  at start (``ingest.node_lease``) and renews it in the background; two live processes
  never share a number, so their ids never collide.
- *Sequence*: 256 ids per tick per process (25,600 a second). When a tick's sequence is
  used up, the generator borrows the next tick (its clock runs ahead for a moment and
  ids stay unique); a wall clock that steps back is ignored the same way.

A lease also bounds time: ids are only issued in ticks that end before the lease
expires, and whoever takes an expired number starts at its old expiry (the lease's
``floor_ms``), so even with skewed clocks the ticks of two holders of one number never
overlap. A UUIDv7 truncated to 53 bits would need ~40 random bits to stay unique and
leave too few for time; a database sequence would cost a round trip per signal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

EPOCH_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z in Unix milliseconds."""
TICK_MS = 10
TICK_BITS, NODE_BITS, SEQUENCE_BITS = 37, 8, 8
NODE_COUNT = 1 << NODE_BITS
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_TICK = (1 << TICK_BITS) - 1
MAX_SIGNAL_ID = (1 << (TICK_BITS + NODE_BITS + SEQUENCE_BITS)) - 1


class SignalIdsUnavailable(Exception):
    """This process holds no valid node number right now (the store is unreachable)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A node number held until ``expires_ms``; ids start no earlier than ``floor_ms``."""

    node_id: int
    floor_ms: int
    expires_ms: int


class LeaseSource(Protocol):
    """Where the generator reads the lease in force (None while it has none)."""

    @property
    def current(self) -> Lease | None: ...


class StaticLease:
    """A fixed node number forever: for tests and single-process tools."""

    def __init__(self, node_id: int = 0) -> None:
        if not 0 <= node_id < NODE_COUNT:
            raise ValueError(f"node id must be in [0, {NODE_COUNT})")
        self.current: Lease | None = Lease(node_id, 0, (MAX_TICK + 1) * TICK_MS + EPOCH_MS)


def tick_of(unix_ms: int) -> int:
    """The 10 ms tick a Unix-millisecond time falls in."""
    return (unix_ms - EPOCH_MS) // TICK_MS


def tick_end_ms(tick: int) -> int:
    """The Unix millisecond at which ``tick`` ends."""
    return (tick + 1) * TICK_MS + EPOCH_MS


def compose(tick: int, node_id: int, sequence: int) -> int:
    """The id of (tick, node, sequence)."""
    return (tick << (NODE_BITS + SEQUENCE_BITS)) | (node_id << SEQUENCE_BITS) | sequence


def decompose(signal_id: int) -> tuple[int, int, int]:
    """(tick, node, sequence) of an id."""
    sequence = signal_id & MAX_SEQUENCE
    node_id = (signal_id >> SEQUENCE_BITS) & (NODE_COUNT - 1)
    return signal_id >> (NODE_BITS + SEQUENCE_BITS), node_id, sequence


class SignalIdGenerator:
    """Issues ids for one process; not thread-safe (one event loop calls it)."""

    def __init__(self, leases: LeaseSource) -> None:
        self._leases = leases
        self._lease: Lease | None = None
        self._tick = -1
        self._sequence = MAX_SEQUENCE

    @property
    def issued_until_ms(self) -> int:
        """Unix ms by which every id issued so far has its tick ended (0 if none)."""
        return tick_end_ms(self._tick) if self._tick >= 0 else 0

    def next_id(self) -> int:
        """A fresh id; raises SignalIdsUnavailable without a valid lease."""
        lease = self._leases.current
        if lease is None:
            raise SignalIdsUnavailable("no signal-id node number is leased")
        if lease is not self._lease:
            self._adopt(lease)
        now_tick = tick_of(time.time_ns() // 1_000_000)
        if now_tick > self._tick:
            self._tick, self._sequence = now_tick, 0
        elif self._sequence < MAX_SEQUENCE:
            self._sequence += 1
        else:
            self._tick, self._sequence = self._tick + 1, 0
        if tick_end_ms(self._tick) > lease.expires_ms or self._tick > MAX_TICK:
            raise SignalIdsUnavailable("the signal-id node lease has expired")
        return compose(self._tick, lease.node_id, self._sequence)

    def _adopt(self, lease: Lease) -> None:
        """Switch to a renewed lease as is; a newly acquired one starts in a fresh tick.

        The fresh tick is past both the lease's floor (the previous holder's ticks) and
        our own last tick (we may have used this number before), so nothing repeats.
        """
        previous = self._lease
        self._lease = lease
        renewed = (
            previous is not None
            and previous.node_id == lease.node_id
            and previous.floor_ms == lease.floor_ms
        )
        if renewed:
            return
        floor_tick = max(0, -(-(lease.floor_ms - EPOCH_MS) // TICK_MS))
        self._tick, self._sequence = max(floor_tick, self._tick + 1), -1
