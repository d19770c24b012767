"""Idempotency within a batch: keys for events that carry none, and repeats of one event.

**Fallback keys.** An event without its own ``idempotency_key``, in a batch sent with an
``Idempotency-Key`` header, gets ``<header>:<digest>``: the digest is the first 32 hex
digits of the SHA-256 of the event's canonical JSON (keys sorted, compact), as sent. It
depends on what the event says, not on where it stands, so a client that resends only
the events a 207 refused, under the same header, gets the same key for each of them
and cannot collide with an event that was accepted (an index-based key would shift and
silently drop an accepted event's neighbour as a "duplicate"). Identical events in one
batch are distinct events (two users may click the same thumbs-up), so the n-th copy
(n >= 1) gets ``<header>:<digest>:<n>``; resending only some copies of identical events
is the one case the digest cannot tell apart, and clients that do it should give each
event its own key.

**Repeats.** Two events of a batch with the same identity (kind, prompt, idempotency
key: what the warehouse keeps one row of) are one event: only the first is accepted
(quota, id, Kafka), and the repeat gets the first one's outcome, ids included, as a
retry would have been answered; so a repeat costs no quota and no record.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ingest.prepare import Prepared
from promptline.topics import EventKind

DIGEST_HEX_DIGITS = 32
"""128 bits of SHA-256: collisions between distinct events are out of reach."""


def content_digest(event: Any) -> str:
    """The digest of an event's canonical JSON (sorted keys, compact)."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:DIGEST_HEX_DIGITS]


class FallbackKeys:
    """Hands out fallback keys for one batch (``None`` for all without a header)."""

    def __init__(self, header: str | None) -> None:
        self._header = header
        self._copies: Counter[str] = Counter()

    def key_for(self, event: Any) -> str | None:
        """The key of an event that has none of its own; call once per such event, in order."""
        if self._header is None:
            return None
        digest = content_digest(event)
        copy = self._copies[digest]
        self._copies[digest] += 1
        return f"{self._header}:{digest}" if copy == 0 else f"{self._header}:{digest}:{copy}"


Identity = tuple[EventKind, uuid.UUID, str]


def first_occurrences(events: Sequence[Prepared]) -> list[int]:
    """For each event, the position of the first event with its identity (its own if none).

    Events without an idempotency key have no identity to share (each is its own event).
    """
    seen: dict[Identity, int] = {}
    firsts: list[int] = []
    for position, event in enumerate(events):
        key = event.fields.get("idempotency_key")
        if key is None:
            firsts.append(position)
            continue
        firsts.append(seen.setdefault((event.kind, event.prompt_id, key), position))
    return firsts
