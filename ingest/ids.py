"""Event ids and receive times, assigned at the edge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid_utils import compat


def new_event_id() -> uuid.UUID:
    """A UUIDv7: unique, and sortable by the time the edge accepted the event.

    ``uuid_utils.compat`` builds the standard library's ``UUID`` itself, for less than a
    round trip through bytes costs.
    """
    return compat.uuid7()


def received_now() -> datetime:
    """The receive time, in UTC with milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
