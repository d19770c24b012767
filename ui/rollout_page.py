"""A guarded rollout as the guard sees it: step, guardrails, sample ratio, what comes next."""

from __future__ import annotations

from aiohttp import web

from controlplane.api.rollouts import rollout_answer
from controlplane.rollouts.lifecycle import latest_rollout
from controlplane.store.models import RolloutStatus
from ui.compare_page import guard_intervals
from ui.handling import page
from ui.prompt_page import done_message, public_id, viewed_prompt
from ui.render import RENDERER
from ui.viewer import Viewer


@page("GET /ui/prompts/:prompt_id/rollout")
async def rollout_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The prompt's latest guarded rollout (or how to start one)."""
    async with viewer.plane.sessions() as session:
        prompt = await viewed_prompt(session, viewer, request)
        rollout = await latest_rollout(session, prompt.id)
    return request.app[RENDERER].page(
        "rollout.html",
        viewer=viewer,
        signed_in=True,
        prompt=prompt,
        prompt_id=public_id(prompt),
        rollout=rollout,
        answer=rollout_answer(prompt, rollout) if rollout is not None else None,
        running=rollout is not None and rollout.status == RolloutStatus.RUNNING,
        charts=guard_intervals(rollout) if rollout is not None else [],
        done=done_message(request),
    )
