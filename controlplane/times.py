"""Times as the store hands them back and as every answer spells them.

SQLite hands datetimes back naive; everything is written in UTC, so naive means UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime) -> datetime:
    """``moment`` with its time zone: UTC when the store dropped it."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second, as the seeds show it."""
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
