"""Seed 003 (``/api/v1/prompt-templates``): list, fetch by name and version, create-or-push.

Decisions the seed leaves open:

- Every bad input (body or query) is ``400 VALIDATION_ERROR`` naming the field; an unknown
  name, an unknown version, or a template without versions is ``404 NOT_FOUND``; a key
  without the needed scope is ``403 FORBIDDEN`` (read for GET, write for POST).
- ``version`` without ``name`` is a 400; ``version`` is a positive integer (``v3`` and a
  content hash are accepted too, as everywhere a version is taken).
- ``?name=`` answers the documented shape plus the template's ``description``,
  ``latestVersion``, ``createdAt``, ``updatedAt`` and ``versions`` (each version's id,
  number, commit message and date, newest first): "the template with its versions".
- ``latestVersion`` is null for a prompt created elsewhere without versions yet; an empty
  ``description`` or ``commitMessage`` is null.
- ``variables`` in a push are merged with the ``{{placeholders}}`` found in the content.
- ``name`` also accepts the template's id (``tmpl-...``), like every prompt reference.
- A template (and a push's answer) adds ``prompt_uuid``, the prompt's UUID, ClickHouse's
  key for it: the same field name in every family, so analysts find it anywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.answer_models import TemplateFound, TemplateList, TemplatePushed
from controlplane.api.context import admit, commit
from controlplane.api.fields import Content, Name, Text, Variable
from controlplane.api.presenters import actor, iso
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.references import (
    MAX_NAME_LENGTH,
    VersionRef,
    find_prompt,
    find_version,
    parse_version_ref,
)
from controlplane.authoring import get_or_create_prompt, push_next_version
from controlplane.ids import IdShape, encode
from controlplane.listing import PromptOverview, prompt_overview, prompt_overviews, versions_of
from controlplane.store.models import Prompt, PromptVersion, Scope
from promptline.http.bodies import json_response, parse_model, read_json
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation, Param
from promptline.http.routes import served_routes

GET_TEMPLATES = Endpoint("GET /api/v1/prompt-templates", LimitClass.READ)
PUSH_TEMPLATE = Endpoint("POST /api/v1/prompt-templates", LimitClass.WRITE)

MAX_VARIABLES = 200


class PushIn(BaseModel):
    """Seed 003's create-or-push body."""

    model_config = ConfigDict(strict=True, extra="ignore")

    name: Name
    content: Content
    variables: Annotated[list[Variable], Field(max_length=MAX_VARIABLES)] | None = None
    description: Text | None = None
    commitMessage: Text | None = None  # the seed's spelling


async def get_templates(request: web.Request) -> web.Response:
    """The project's templates, or one template's latest (or given) version."""
    caller = await admit(request, Scope.READ, GET_TEMPLATES)
    name = request.query.get("name")
    version_text = request.query.get("version")
    if name is None:
        if version_text is not None:
            raise ApiError(ErrorKind.INVALID_REQUEST, "'version' requires 'name'.", field="version")
        async with caller.plane.sessions() as session:
            overviews = await prompt_overviews(session, caller.principal.project_id)
        return json_response({"data": [_template(overview) for overview in overviews]})
    if not name:
        raise ApiError(ErrorKind.INVALID_REQUEST, "'name' must not be empty.", field="name")
    ref = _version_ref(version_text)
    async with caller.plane.sessions() as session:
        prompt = await find_prompt(session, caller.principal.project_id, name)
        if prompt is None:
            raise ApiError(
                ErrorKind.NOT_FOUND, f"No template named '{name[:MAX_NAME_LENGTH]}'.", field="name"
            )
        overview = await prompt_overview(session, prompt)
        versions = await versions_of(session, prompt.id)
        chosen = versions[0] if ref is None and versions else None
        if ref is not None:
            chosen = await find_version(session, prompt.id, ref)
    if chosen is None:
        wanted = (
            f"version {version_text[:MAX_NAME_LENGTH]}"
            if version_text is not None
            else "any version"
        )
        raise ApiError(
            ErrorKind.NOT_FOUND, f"Template '{prompt.name}' has no {wanted}.", field="version"
        )
    return json_response(
        {
            "data": _template(overview)
            | {
                "version": _version(chosen, content=True),
                "versions": [_version(version) for version in versions],
            }
        }
    )


async def post_template(request: web.Request) -> web.Response:
    """Create the template if new, and push its next version."""
    caller = await admit(request, Scope.WRITE, PUSH_TEMPLATE)
    body = parse_model(PushIn, await read_json(request), ErrorKind.INVALID_REQUEST)

    async def work(session: AsyncSession) -> tuple[Prompt, PromptVersion]:
        prompt = await get_or_create_prompt(
            session, caller.principal.project_id, body.name, body.description or ""
        )
        version = await push_next_version(
            session,
            prompt,
            body.content,
            message=body.commitMessage or "",
            created_by=actor(caller.principal),
            variables=body.variables,
        )
        return prompt, version

    prompt, version = await commit(caller.plane, work)
    return json_response(
        {
            "data": {
                "templateId": encode(IdShape.TEMPLATE, prompt.id),
                "templateName": prompt.name,
                "prompt_uuid": str(prompt.id),
                "versionId": encode(IdShape.TEMPLATE_VERSION, version.id),
                "version": version.number,
            }
        },
        status=201,
    )


def _version_ref(text: str | None) -> VersionRef | None:
    if text is None:
        return None
    ref = parse_version_ref(text)
    if ref is None:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"'version' must be a positive integer. Got '{text[:MAX_NAME_LENGTH]}'.",
            field="version",
        )
    return ref


def _template(overview: PromptOverview) -> dict[str, Any]:
    prompt = overview.prompt
    return {
        "id": encode(IdShape.TEMPLATE, prompt.id),
        "prompt_uuid": str(prompt.id),
        "name": prompt.name,
        "description": prompt.description or None,
        "latestVersion": overview.latest,
        "createdAt": iso(prompt.created_at),
        "updatedAt": iso(prompt.updated_at),
    }


def _version(version: PromptVersion, *, content: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": encode(IdShape.TEMPLATE_VERSION, version.id)}
    shown["version"] = version.number
    if content:
        shown["content"] = version.content
        shown["variables"] = list(version.variables)
    shown["commitMessage"] = version.message or None
    shown["createdAt"] = iso(version.created_at)
    return shown


TAG = "prompt templates (seed 003)"
GET_OP = Operation(
    summary="List templates, or fetch one",
    description="Without `name`: every template of the key's project (`TemplateList`). With "
    "`name`: that template with its latest (or the given) version and every version "
    "(`TemplateFound`); an unknown name or version is 404. `version` without `name` is 400.",
    tag=TAG,
    scope=Scope.READ,
    answers={
        200: Answer("The templates, or the one named.", one_of=(TemplateList, TemplateFound)),
    },
    errors=(ErrorKind.INVALID_REQUEST, ErrorKind.NOT_FOUND),
    parameters=(
        Param("name", "The template's name (or id)."),
        Param("version", "A version: a positive integer (`v3` and a content hash work too)."),
    ),
)
PUSH_OP = Operation(
    summary="Create a template or push its next version",
    description="Creates the template if new, then pushes its next version.",
    tag=TAG,
    scope=Scope.WRITE,
    body=PushIn,
    answers={201: Answer("Pushed.", TemplatePushed)},
    errors=(ErrorKind.CONFLICT,),
)


def add_routes(app: web.Application) -> None:
    """Register seed 003's routes."""
    served_routes(app).add_get("/api/v1/prompt-templates", get_templates, GET_OP)
    served_routes(app).add_post("/api/v1/prompt-templates", post_template, PUSH_OP)
