"""The time window of a comparison, and how it splits between hourly aggregates and raw rows.

The aggregates hold whole hours. A window ``[from, to)`` that starts or ends inside an hour
is read as whole hours from the aggregates plus its ragged edges from the raw tables, so the
answer is exact for any window while the bulk of it costs a few rows per hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

HOUR = timedelta(hours=1)


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
        start = ceil_hour(self.start) if self.start is not None else None
        end = floor_hour(self.end) if self.end is not None else None
        if start is not None and end is not None and start >= end:
            return None
        return Span(start, end)

    def edges(self) -> list[Span]:
        """The parts of the window outside whole hours, read from the raw tables."""
        hours = self.hours()
        if hours is None:
            return [Span(self.start, self.end)]
        edges = []
        if self.start is not None and hours.start is not None and self.start < hours.start:
            edges.append(Span(self.start, hours.start))
        if self.end is not None and hours.end is not None and hours.end < self.end:
            edges.append(Span(hours.end, self.end))
        return edges
