"""A project's recent activity per prompt, for the dashboard's list of prompts.

Read from the hourly aggregates only (one small range scan each), so the list costs the
same however many events are stored: "the last 24 hours" are the hours that began in the
last 24 hours, the current one included.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from compare.queries import RunQuery

_ANALYTICS = (
    "SELECT prompt_id, sum(events) FROM analytics_hourly"
    " WHERE project_id = {project:UUID} AND hour >= {since:DateTime('UTC')} GROUP BY prompt_id"
)
_SIGNALS = (
    "SELECT prompt_id, sum(positive), sum(negative) FROM signals_hourly"
    " WHERE project_id = {project:UUID} AND hour >= {since:DateTime('UTC')} GROUP BY prompt_id"
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One prompt's analytics events and signals over the period."""

    events: int = 0
    positive: int = 0
    negative: int = 0

    @property
    def positive_rate(self) -> float | None:
        """Positive signals over all signals; None without any."""
        total = self.positive + self.negative
        return self.positive / total if total else None


async def recent_activity(
    run: RunQuery, project_id: uuid.UUID, now: datetime, hours: int = 24
) -> dict[uuid.UUID, Activity]:
    """Events and signals per prompt of the project in the last ``hours`` hours."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    parameters = {"project": project_id, "since": start}
    events = {uuid.UUID(str(row[0])): int(row[1]) for row in await run(_ANALYTICS, parameters)}
    votes = {
        uuid.UUID(str(row[0])): (int(row[1]), int(row[2]))
        for row in await run(_SIGNALS, parameters)
    }
    return {
        prompt: Activity(events.get(prompt, 0), *votes.get(prompt, (0, 0)))
        for prompt in events.keys() | votes.keys()
    }
