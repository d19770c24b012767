"""``GET /v1/prompts/:prompt_id/rollout`` and ``POST /v1/prompts/:prompt_id/rollout/stop``.

The first shows the prompt's latest guarded rollout: where it is (step, percent, time in
step), the guard's latest look (per guardrail the estimate, its always-valid interval, the
margin and the verdict; the sample-ratio check) and what happens next in words; an ended
rollout says how it ended. The second ends the guard by hand: traffic stays as it is, and
nothing more is decided for it. Both are seed 001's family (``/v1``), with its limits.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.answer_models import RolloutOut
from controlplane.api.context import Caller, admit, commit
from controlplane.api.presenters import actor
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.references import MAX_NAME_LENGTH, find_prompt
from controlplane.rollouts import lifecycle
from controlplane.store.models import Prompt, Rollout, RolloutStatus, Scope
from promptline.http.bodies import json_response
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes

SHOW = Endpoint("GET /v1/prompts/:prompt_id/rollout", LimitClass.READ)
STOP = Endpoint("POST /v1/prompts/:prompt_id/rollout/stop", LimitClass.DEPLOY)


async def _prompt(session: AsyncSession, caller: Caller, request: web.Request) -> Prompt:
    ref = request.match_info["prompt_id"]
    prompt = await find_prompt(session, caller.principal.project_id, ref)
    if prompt is None:
        raise ApiError(
            ErrorKind.NOT_FOUND, f"Prompt '{ref[:MAX_NAME_LENGTH]}' not found.", field="prompt_id"
        )
    return prompt


def rollout_answer(prompt: Prompt, rollout: Rollout) -> dict[str, Any]:
    """The rollout, the guard's latest look at it, and what happens next."""
    answer = lifecycle.rollout_json(rollout)
    report = rollout.report
    answer["prompt"] = prompt.name
    answer["evaluation"] = report
    if rollout.status == RolloutStatus.RUNNING.value:
        decision = (report or {}).get("decision") or {}
        reason = decision.get("reason")
        answer["next"] = reason or "the guard has not looked at it yet"
    else:
        answer["next"] = f"nothing: the rollout is {rollout.status.replace('_', ' ')}"
    return answer


async def get_rollout(request: web.Request) -> web.Response:
    """The prompt's latest guarded rollout; 404 if it never had one."""
    caller = await admit(request, Scope.READ, SHOW)
    async with caller.plane.sessions() as session:
        prompt = await _prompt(session, caller, request)
        rollout = await lifecycle.latest_rollout(session, prompt.id)
    if rollout is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt.name}' has had no guarded rollout; deploy with a guard to start one.",
        )
    return json_response(rollout_answer(prompt, rollout))


async def post_stop(request: web.Request) -> web.Response:
    """End the prompt's running rollout by hand; 409 when none runs."""
    caller = await admit(request, Scope.DEPLOY, STOP)

    async def work(session: AsyncSession) -> tuple[Prompt, Rollout]:
        prompt = await _prompt(session, caller, request)
        rollout = await lifecycle.stop(session, prompt, actor(caller.principal))
        if rollout is None:
            raise ApiError(
                ErrorKind.CONFLICT, f"Prompt '{prompt.name}' has no rollout under guard."
            )
        return prompt, rollout

    prompt, rollout = await commit(caller.plane, work)
    return json_response(rollout_answer(prompt, rollout))


TAG = "prompts (seed 001)"
SHOW_OP = Operation(
    summary="A guarded rollout",
    description="The prompt's latest guarded rollout: step, time in step, per guardrail the "
    "estimate, its always-valid interval, the margin and the verdict, the sample-ratio check, "
    "and what happens next. 404 if the prompt never had one.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The rollout.", RolloutOut)},
    errors=(ErrorKind.NOT_FOUND,),
)
STOP_OP = Operation(
    summary="Stop a guarded rollout",
    description="Ends the guard by hand; traffic stays as it is. 409 when no rollout runs.",
    tag=TAG,
    scope=Scope.DEPLOY,
    answers={200: Answer("The rollout, stopped.", RolloutOut)},
    errors=(ErrorKind.NOT_FOUND, ErrorKind.CONFLICT),
)


def add_routes(app: web.Application) -> None:
    """Register the rollout routes."""
    router = served_routes(app)
    router.add_get("/v1/prompts/{prompt_id}/rollout", get_rollout, SHOW_OP)
    router.add_post("/v1/prompts/{prompt_id}/rollout/stop", post_stop, STOP_OP)
