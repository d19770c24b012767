"""The time window of a comparison, and how it splits between aggregates and raw rows.

The aggregates hold whole hours. A window ``[from, to)`` that starts or ends inside an hour
is read as whole hours from the aggregates plus its ragged edges from the raw tables, so the
answer is exact for any window while the bulk of it costs a few rows per hour. The trace
sketches are also kept per day: their whole days (``days``) cost one state per day, and the
whole hours beside them (``hours_beside_days``) come from the hourly sketches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Bucket(StrEnum):
    """How finely a comparison's series is cut."""

    HOUR = "hour"
    DAY = "day"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC. Raises ValueError if it is not one."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def floor_hour(moment: datetime) -> datetime:
    """The start of the hour ``moment`` is in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    """The first hour start at or after ``moment``."""
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def floor_day(moment: datetime) -> datetime:
    """The start of the (UTC) day ``moment`` is in."""
    return floor_hour(moment).replace(hour=0)


def ceil_day(moment: datetime) -> datetime:
    """The first day start at or after ``moment``."""
    floor = floor_day(moment)
    return floor if floor == moment else floor + DAY


@dataclass(frozen=True, slots=True)
class Span:
    """``[start, end)``; None means unbounded on that side."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC; either end may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("'from' must be before 'to'")

    @property
    def whole(self) -> Span:
        """The whole window, for queries that read raw rows only."""
        return Span(self.start, self.end)

    def hours(self) -> Span | None:
        """The whole hours inside the window, read from the aggregates; None if there are none."""
        return _inside(self.whole, ceil_hour, floor_hour)

    def edges(self) -> list[Span]:
        """The parts of the window outside whole hours, read from the raw tables."""
        return _beside(self.whole, self.hours())

    def days(self) -> Span | None:
        """The whole (UTC) days inside the window; None if there are none."""
        return _inside(self.whole, ceil_day, floor_day)

    def hours_beside_days(self) -> list[Span]:
        """The whole hours inside the window but outside its whole days."""
        hours = self.hours()
        return [] if hours is None else _beside(hours, self.days())


def _inside(
    outer: Span, ceil: Callable[[datetime], datetime], floor: Callable[[datetime], datetime]
) -> Span | None:
    """The whole units (hours, days) inside ``outer``; None if there are none."""
    start = ceil(outer.start) if outer.start is not None else None
    end = floor(outer.end) if outer.end is not None else None
    if start is not None and end is not None and start >= end:
        return None
    return Span(start, end)


def _beside(outer: Span, inner: Span | None) -> list[Span]:
    """The parts of ``outer`` before and after ``inner`` (all of it when there is no inner)."""
    if inner is None:
        return [outer]
    parts = []
    if outer.start is not None and inner.start is not None and outer.start < inner.start:
        parts.append(Span(outer.start, inner.start))
    if outer.end is not None and inner.end is not None and inner.end < outer.end:
        parts.append(Span(inner.end, outer.end))
    return parts
