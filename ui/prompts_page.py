"""The list of prompts: what each serves, its split, its last deploy and its last day."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from clickhouse_connect.driver.exceptions import OperationalError

from compare.overview import Activity, recent_activity
from compare.warehouse import WAREHOUSE
from controlplane.deployments import main_version, split_of
from controlplane.ids import IdShape, encode
from controlplane.listing import PromptOverview, prompt_overviews
from ui.handling import page, public_url
from ui.render import RENDERER
from ui.viewer import Viewer

MAX_QUERY = 200


@dataclass(frozen=True, slots=True)
class PromptLine:
    """One row of the list."""

    overview: PromptOverview
    public_id: str
    serving: int | None
    split: list[tuple[int, int]]
    activity: Activity | None


@page("GET /ui/prompts")
async def prompts_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Every prompt of the key's project, filtered by the search box."""
    query = request.query.get("q", "")[:MAX_QUERY].strip()
    async with viewer.plane.sessions() as session:
        overviews = await prompt_overviews(session, viewer.principal.project_id)
    if query:
        needle = query.casefold()
        overviews = [
            row
            for row in overviews
            if needle in row.prompt.name.casefold() or needle in row.prompt.description.casefold()
        ]
    activity: dict[uuid.UUID, Activity] | None
    try:
        activity = await recent_activity(
            request.app[WAREHOUSE].rows, viewer.principal.project_id, datetime.now(UTC)
        )
    except (OperationalError, OSError):
        activity = None  # the list still shows; the page says the figures are unavailable
    lines = [
        PromptLine(
            overview=row,
            public_id=encode(IdShape.PROMPT, row.prompt.id),
            serving=main_version(row.deployment, row.latest),
            split=split_of(row.deployment.traffic) if row.deployment is not None else [],
            activity=None if activity is None else activity.get(row.prompt.id, Activity()),
        )
        for row in overviews
    ]
    return request.app[RENDERER].page(
        "prompts.html",
        viewer=viewer,
        signed_in=True,
        query=query,
        lines=lines,
        analytics_down=activity is None,
        public_url=public_url(request),
    )
