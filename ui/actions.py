"""What a person can do from the pages: deploy a split, roll back, stop a guarded rollout.

Each is two posts: the first shows what will change and asks to confirm (nothing is
written), the second, with ``confirm=yes``, writes through the same code as the API's
routes (``deploy_split``, ``roll_back_by_hand``, ``lifecycle.stop``) and goes back to the
prompt. Both posts need the session's CSRF token, our own origin and the deploy scope;
the write counts against the key's deploy limits, as the API's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.context import commit
from controlplane.api.presenters import actor
from controlplane.api.promptlab import DeployIn, deploy_split, roll_back_by_hand
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.deployments import current_deployment, history, rollback_target, split_of
from controlplane.resolve import DeploymentSpecError, VersionSet, parse_traffic
from controlplane.rollouts import lifecycle
from controlplane.store.models import Prompt, PromptVersion
from promptline.http.errors import ApiError, ErrorKind
from ui.handling import page, see_other
from ui.prompt_page import public_id, viewed_prompt
from ui.render import RENDERER
from ui.viewer import Viewer, check_action

DEPLOY = Endpoint("POST /ui/prompts/:prompt_id/deploy", LimitClass.DEPLOY)
ROLLBACK = Endpoint("POST /ui/prompts/:prompt_id/rollback", LimitClass.DEPLOY)
STOP = Endpoint("POST /ui/prompts/:prompt_id/rollout/stop", LimitClass.DEPLOY)
MAX_WEIGHT_TEXT = 3


async def _form(request: web.Request, viewer: Viewer) -> dict[str, str]:
    form = {key: str(value) for key, value in (await request.post()).items()}
    check_action(request, viewer, form)
    return form


def _weights(form: dict[str, str]) -> list[dict[str, Any]]:
    """The split the form asks for: ``weight_<n>`` fields, blanks and zeros left out."""
    traffic = []
    for name, value in sorted(form.items()):
        number = name.removeprefix("weight_")
        if number == name or not number.isdigit() or not value.strip():
            continue
        text = value.strip()
        if len(text) > MAX_WEIGHT_TEXT or not text.isdigit():
            raise ApiError(
                ErrorKind.INVALID_REQUEST, f"The weight of v{number[:6]} must be 0 to 100."
            )
        if int(text) > 0:
            traffic.append({"version": f"v{int(number)}", "weight": int(text)})
    return traffic


async def _write(
    request: web.Request,
    viewer: Viewer,
    endpoint: Endpoint,
    change: Callable[[AsyncSession, Prompt], Awaitable[None]],
    landing: str,
) -> web.Response:
    """Count the write, make ``change`` to the path's prompt in one transaction (retried
    on races), then send the browser to the prompt's page (``landing`` appended)."""
    await viewer.plane.limiter.check(viewer.principal, endpoint)

    async def work(session: AsyncSession) -> str:
        prompt = await viewed_prompt(session, viewer, request)
        await change(session, prompt)
        return public_id(prompt)

    prompt_id = await commit(viewer.plane, work)
    return see_other(f"/ui/prompts/{prompt_id}{landing}")


def _confirm(request: web.Request, viewer: Viewer, **context: Any) -> web.Response:
    return request.app[RENDERER].page("confirm.html", viewer=viewer, signed_in=True, **context)


@page("POST /ui/prompts/:prompt_id/deploy")
async def deploy_action(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Deploy the split of the form, once confirmed."""
    form = await _form(request, viewer)
    traffic = _weights(form)
    try:
        body = DeployIn(traffic=traffic, label=form.get("label", "").strip())
    except ValidationError as error:
        raise ApiError(ErrorKind.INVALID_REQUEST, "The label is too long or not text.") from error
    if form.get("confirm") != "yes":
        async with viewer.plane.sessions() as session:
            prompt = await viewed_prompt(session, viewer, request)
            current = await current_deployment(session, prompt.id)
            versions = VersionSet(
                await session.scalars(
                    select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
                )
            )
        problem = None
        try:
            parse_traffic(traffic, versions)
        except DeploymentSpecError as error:
            problem = error.message
        return _confirm(
            request,
            viewer,
            action="deploy",
            prompt=prompt,
            prompt_id=public_id(prompt),
            before=split_of(current.traffic) if current is not None else [],
            after=[(int(item["version"][1:]), item["weight"]) for item in traffic],
            label=body.label,
            problem=problem,
            fields=form,
        )

    async def change(session: AsyncSession, prompt: Prompt) -> None:
        await deploy_split(session, prompt, body, actor(viewer.principal))

    return await _write(request, viewer, DEPLOY, change, "?done=deployed")


@page("POST /ui/prompts/:prompt_id/rollback")
async def rollback_action(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Roll back to the previous stable version, once confirmed."""
    form = await _form(request, viewer)
    if form.get("confirm") != "yes":
        async with viewer.plane.sessions() as session:
            prompt = await viewed_prompt(session, viewer, request)
            past = await history(session, prompt.id)
        target = rollback_target(past)
        return _confirm(
            request,
            viewer,
            action="rollback",
            prompt=prompt,
            prompt_id=public_id(prompt),
            before=split_of(past[0].traffic) if past else [],
            after=[(target[1], 100)] if target is not None else [],
            restored=target[0] if target is not None else None,
            problem=None
            if target is not None
            else "There is no earlier deployment that sent all traffic to another version.",
            fields=form,
        )

    async def change(session: AsyncSession, prompt: Prompt) -> None:
        await roll_back_by_hand(session, prompt, actor(viewer.principal))

    return await _write(request, viewer, ROLLBACK, change, "?done=rolled_back")


@page("POST /ui/prompts/:prompt_id/rollout/stop")
async def stop_action(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """End the guard of the running rollout by hand, once confirmed; traffic stays."""
    form = await _form(request, viewer)
    if form.get("confirm") != "yes":
        async with viewer.plane.sessions() as session:
            prompt = await viewed_prompt(session, viewer, request)
            rollout = await lifecycle.running_rollout(session, prompt.id)
            current = await current_deployment(session, prompt.id)
        split = split_of(current.traffic) if current is not None else []
        return _confirm(
            request,
            viewer,
            action="stop",
            prompt=prompt,
            prompt_id=public_id(prompt),
            before=split,
            after=split,
            problem=None if rollout is not None else "No rollout of this prompt is under guard.",
            fields=form,
        )

    async def change(session: AsyncSession, prompt: Prompt) -> None:
        if await lifecycle.stop(session, prompt, actor(viewer.principal)) is None:
            raise ApiError(
                ErrorKind.CONFLICT, f"Prompt '{prompt.name}' has no rollout under guard."
            )

    return await _write(request, viewer, STOP, change, "/rollout?done=stopped")
