"""Event ids and receive times, assigned at the edge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import uuid_utils


def new_event_id() -> uuid.UUID:
    """A UUIDv7: unique, and sortable by the time the edge accepted the event."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def received_now() -> datetime:
    """The receive time, in UTC with milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
