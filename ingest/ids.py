"""Event ids and receive times, assigned at the edge."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

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


_second: list[Any] = [None, ""]
"""The last second :func:`received_stamp` formatted, and its text up to the milliseconds."""


def received_stamp() -> str:
    """The receive time in the records' wire form (``schemas.records.wire_time``: UTC,
    milliseconds, "Z"), its date and time formatted once a second, not once an event."""
    second, millis = divmod(time.time_ns() // 1_000_000, 1000)
    if second != _second[0]:
        _second[:] = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{_second[1]}{millis:03d}Z"
