"""A prompt: its versions, a diff between any two, its deployment timeline and split."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.references import MAX_NAME_LENGTH, find_prompt
from controlplane.deployments import history, rollback_target, split_of
from controlplane.ids import IdShape, encode
from controlplane.listing import versions_of
from controlplane.rollouts.lifecycle import latest_rollout
from controlplane.store.models import Prompt, PromptVersion
from promptline.http.errors import ApiError, ErrorKind
from ui.diff import collapse, line_diff, summarize
from ui.handling import page
from ui.render import RENDERER
from ui.viewer import Viewer


async def viewed_prompt(session: AsyncSession, viewer: Viewer, request: web.Request) -> Prompt:
    """The prompt the path names, of the viewer's project only (404 otherwise)."""
    ref = request.match_info["prompt_id"]
    prompt = await find_prompt(session, viewer.principal.project_id, ref)
    if prompt is None:
        raise ApiError(ErrorKind.NOT_FOUND, f"No prompt '{ref[:MAX_NAME_LENGTH]}' in your project.")
    return prompt


DONE = {
    "deployed": "Deployed: resolve serves the new split now.",
    "rolled_back": "Rolled back: resolve serves the restored version now.",
    "stopped": "The guard was stopped; traffic stays as it is.",
}


def done_message(request: web.Request) -> str | None:
    """What the action just done did, said once on the page it lands on."""
    return DONE.get(request.query.get("done", ""))


def public_id(prompt: Prompt) -> str:
    """The prompt's id in the dashboard's paths."""
    return encode(IdShape.PROMPT, prompt.id)


@page("GET /ui/prompts/:prompt_id")
async def prompt_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Versions, timeline, the current split, and the deploy and rollback forms."""
    async with viewer.plane.sessions() as session:
        prompt = await viewed_prompt(session, viewer, request)
        versions = await versions_of(session, prompt.id)
        past = await history(session, prompt.id)
        rollout = await latest_rollout(session, prompt.id)
    current = past[0] if past else None
    split = split_of(current.traffic) if current is not None else []
    target = rollback_target(past)
    return request.app[RENDERER].page(
        "prompt.html",
        viewer=viewer,
        signed_in=True,
        prompt=prompt,
        prompt_id=public_id(prompt),
        versions=versions,
        timeline=[(row, split_of(row.traffic)) for row in past],
        split=split,
        weights=dict(split) if split else ({versions[0].number: 100} if versions else {}),
        current=current,
        rollout=rollout,
        rollback_to=target[1] if target is not None else None,
        done=done_message(request),
    )


def _chosen(versions: list[PromptVersion], text: str | None, default: int) -> PromptVersion:
    by_number = {version.number: version for version in versions}
    if text is not None:
        number = text[1:] if text[:1] in ("v", "V") else text
        if number.isdigit() and int(number) in by_number:
            return by_number[int(number)]
        raise ApiError(ErrorKind.NOT_FOUND, f"No version '{text[:20]}' of this prompt.")
    return by_number[default]


@page("GET /ui/prompts/:prompt_id/diff")
async def diff_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A line-by-line diff between two versions (``a`` and ``b``; default: the two newest)."""
    async with viewer.plane.sessions() as session:
        prompt = await viewed_prompt(session, viewer, request)
        versions = await versions_of(session, prompt.id)
    if not versions:
        raise ApiError(ErrorKind.NOT_FOUND, f"Prompt '{prompt.name}' has no versions yet.")
    newest = versions[0].number
    old = _chosen(versions, request.query.get("a"), max(1, newest - 1))
    new = _chosen(versions, request.query.get("b"), newest)
    lines = line_diff(old.content, new.content)
    return request.app[RENDERER].page(
        "diff.html",
        viewer=viewer,
        signed_in=True,
        prompt=prompt,
        prompt_id=public_id(prompt),
        versions=versions,
        old=old,
        new=new,
        lines=collapse(lines),
        summary=summarize(lines),
    )
