"""Exposures per version since a moment: what the guard's looks and sample-ratio check read.

Exact distinct units (``uniqExact``), from the hourly aggregate's whole hours plus the raw
rows of the first, partial hour, as compare reads every figure (``compare/window.py``).
Narrowed to the deployments given, and to the versions their weighted split decided
(``by_split=True``), it is what a sample-ratio check compares with the split's weights:
units a targeting rule sent to a version were not drawn by the split.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from compare.queries import RunQuery, Scope, UnitCounts, exposures_sql
from compare.window import Window

__all__ = ["UnitCounts", "exposure_units"]


async def exposure_units(
    run: RunQuery,
    project_id: uuid.UUID,
    prompt_id: uuid.UUID,
    since: datetime,
    *,
    deployment_ids: Sequence[uuid.UUID] | None = None,
    by_split: bool | None = None,
) -> dict[int, UnitCounts]:
    """Per version number: exposures and exact distinct units received at or after ``since``
    (an aware time), only of ``deployment_ids`` if given, only those ``by_split`` decided
    (True: the weighted split; False: a rule or ``latest``) if given."""
    scope = Scope(project_id, prompt_id, Window(since, None))
    sql, parameters = exposures_sql(scope, deployment_ids=deployment_ids, by_split=by_split)
    return {
        int(version): UnitCounts(int(exposures), int(units))
        for version, exposures, units in await run(sql, parameters)
    }
