"""Seed 002 (``/dashboard/prompts``): versions with explicit numbers, grouped by name.

The compare and usage routes of the seed live elsewhere; these are create and the lists.

Decisions the seed leaves open:

- "Per user" is per project: the API key's project, as everywhere else.
- ``id`` is the version record's UUID; ``description`` is the version's description of
  what changed (stored as its message: 001's ``message``, 003's ``commitMessage``), null
  when not given.
- ``is_active`` is true iff the version gets traffic now: it is weighted above 0 in the
  deployment in force (or one of its targeting rules), or, for a prompt never deployed,
  it is the latest version, which resolve serves then. The seed's "always true on
  creation" holds in the seed's own workflow (numbers increase, nothing is deployed); a
  version created below the latest number, or while a deployment is in force, is honestly
  reported inactive until it is deployed.
- A body that is not JSON is ``400 invalid_request``; a field that fails validation is
  ``422 validation_error`` naming it (the family's framework convention).
- The paths work with or without their trailing slash.
- Each version adds ``prompt_uuid``, its prompt's UUID (ClickHouse's key for the prompt).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.answer_models import DashboardVersion, DashboardVersions
from controlplane.api.context import admit, commit
from controlplane.api.fields import Content, Name, Text, VersionNumber
from controlplane.api.presenters import actor, iso
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.references import MAX_NAME_LENGTH, find_prompt
from controlplane.authoring import VersionExists, push_numbered_version
from controlplane.listing import VersionRow, version_rows
from controlplane.store.models import Scope
from promptline.http.bodies import json_response, parse_model, read_json
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes

LIST_ALL = Endpoint("GET /dashboard/prompts", LimitClass.READ)
CREATE = Endpoint("POST /dashboard/prompts", LimitClass.WRITE)
LIST_NAMED = Endpoint("GET /dashboard/prompts/:name/versions", LimitClass.READ)


class CreateIn(BaseModel):
    """Seed 002's create body; ``version`` must be a JSON integer."""

    model_config = ConfigDict(strict=True, extra="ignore")

    name: Name
    version: VersionNumber
    content: Content
    description: Text | None = None


async def post_prompt(request: web.Request) -> web.Response:
    """Create version ``version`` of prompt ``name``; 409 if it exists."""
    caller = await admit(request, Scope.WRITE, CREATE)
    body = parse_model(CreateIn, await read_json(request), ErrorKind.VALIDATION)
    project_id = caller.principal.project_id

    async def work(session: AsyncSession) -> VersionRow:
        try:
            prompt, version = await push_numbered_version(
                session,
                project_id,
                body.name,
                body.version,
                body.content,
                message=body.description or "",
                created_by=actor(caller.principal),
            )
        except VersionExists as error:
            raise ApiError(ErrorKind.CONFLICT, str(error), field="version") from error
        rows = await version_rows(session, project_id, prompt)
        return next(row for row in rows if row.version.id == version.id)

    row = await commit(caller.plane, work)
    return json_response(_template(row), status=201)


async def get_prompts(request: web.Request) -> web.Response:
    """Every version of every prompt: by name, then newest version first."""
    caller = await admit(request, Scope.READ, LIST_ALL)
    async with caller.plane.sessions() as session:
        rows = await version_rows(session, caller.principal.project_id)
    return json_response([_template(row) for row in rows])


async def get_versions(request: web.Request) -> web.Response:
    """The versions of one prompt, newest first; 404 if there is no prompt of that name."""
    caller = await admit(request, Scope.READ, LIST_NAMED)
    name = request.match_info["name"]
    project_id = caller.principal.project_id
    async with caller.plane.sessions() as session:
        prompt = await find_prompt(session, project_id, name)
        if prompt is None:
            raise ApiError(ErrorKind.NOT_FOUND, f"No prompt named '{name[:MAX_NAME_LENGTH]}'.")
        rows = await version_rows(session, project_id, prompt)
    return json_response([_template(row) for row in rows])


def _template(row: VersionRow) -> dict[str, Any]:
    version = row.version
    return {
        "id": str(version.id),
        "name": row.prompt.name,
        "prompt_uuid": str(row.prompt.id),
        "version": version.number,
        "content": version.content,
        "description": version.message or None,
        "is_active": row.serving,
        "created_at": iso(version.created_at),
    }


TAG = "dashboard (seed 002)"
CREATE_OP = Operation(
    summary="Create a numbered version",
    description="Version `version` of prompt `name` (the prompt is created if new); 409 if "
    "that version exists. A field that fails validation is 422 naming it.",
    tag=TAG,
    scope=Scope.WRITE,
    body=CreateIn,
    answers={201: Answer("Created.", DashboardVersion)},
    errors=(ErrorKind.VALIDATION, ErrorKind.CONFLICT),
)
LIST_ALL_OP = Operation(
    summary="List every version",
    description="Every version of every prompt of the key's project: by name, then newest first.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The versions.", DashboardVersions)},
)
LIST_NAMED_OP = Operation(
    summary="List a prompt's versions",
    description="The versions of one prompt, newest first; 404 if there is no such prompt.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The versions.", DashboardVersions)},
    errors=(ErrorKind.NOT_FOUND,),
)


def add_routes(app: web.Application) -> None:
    """Register seed 002's create and list routes (compare and usage are elsewhere)."""
    router = served_routes(app)
    for path in ("/dashboard/prompts/", "/dashboard/prompts"):
        router.add_post(path, post_prompt, CREATE_OP)
        router.add_get(path, get_prompts, LIST_ALL_OP)
    for path in ("/dashboard/prompts/{name}/versions", "/dashboard/prompts/{name}/versions/"):
        router.add_get(path, get_versions, LIST_NAMED_OP)
