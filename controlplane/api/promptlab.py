"""Seed 001 (PromptLab, ``/v1``): resolve, prompts, versions, deploy and rollback.

Resolve's handler, the hot path, is in :mod:`controlplane.api.resolve_route`; it is
registered here with the family's other routes.

Besides the documented routes, the family has what a client needs around them:
``POST /v1/prompts`` creates a prompt (``name``, optional ``description``; 409 ``conflict``
if the name is taken), ``GET /v1/prompts/:prompt_id`` shows one with its versions and the
deployment in force, ``GET /v1/prompts/:prompt_id/versions[/:version]`` lists or shows
versions, and ``GET /v1/prompts/:prompt_id/deployments`` is the deployment history.

Decisions the seed leaves open:

- Creations (prompt, version, deployment) answer 201; rollback answers 200.
- Any bad body is ``400 invalid_request`` naming the field (the family documents no other
  4xx for bodies), except weights not summing to 100 (``422 weight_mismatch``) and a
  version reference naming no version of the prompt (``404 not_found``).
- ``active_version`` is the version with the largest share of the deployment in force (the
  newer on a tie), or the latest version of a never-deployed prompt (which resolve serves
  then), or null for a prompt without versions.
- Rollback with nothing earlier to return to is ``409 conflict`` (the prompt exists, its
  history does not allow the action); see ``controlplane.deployments``.
- ``created_by`` / ``deployed_by`` name the API key (``key_<hex>``): there are no users.
- Every answer that describes a prompt adds ``prompt_uuid``, the prompt's UUID: the key
  its events have in ClickHouse, where analysts filter by it.
- Resolve takes the prompt's name (or any of its ids), never queries the database, and
  adds ``prompt_id``, ``prompt_uuid``, ``version_id``, ``content_hash``, ``deployment_id``
  and ``missing_variables`` to the documented fields; ``"strict": true`` turns missing template
  variables into a 400.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.answer_models import (
    DeploymentList,
    DeploymentOut,
    PromptDetail,
    PromptList,
    PromptOut,
    RollbackOut,
    VersionList,
    VersionOut,
)
from controlplane.api.context import Caller, KeptPlane, admit, commit
from controlplane.api.fields import Content, Label, Name, Text, Variable
from controlplane.api.presenters import actor, iso, version_label
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.references import (
    MAX_NAME_LENGTH,
    find_prompt,
    find_version,
    parse_version_ref,
)
from controlplane.api.resolve_model import ResolveIn, ResolveOut
from controlplane.api.resolve_route import post_resolve
from controlplane.authoring import PromptExists, create_prompt, lock_prompt, push_next_version
from controlplane.deployments import (
    NothingToRollBack,
    RolledBack,
    history,
    main_version,
    record_deployment,
    rollback,
)
from controlplane.ids import IdShape, encode
from controlplane.listing import PromptOverview, prompt_overview, prompt_overviews, versions_of
from controlplane.resolve import (
    DeploymentSpecError,
    VersionSet,
    parse_rules,
    parse_traffic,
)
from controlplane.rollouts.lifecycle import GuardRefused, end_by_hand, start_rollout
from controlplane.rollouts.plan import GuardIn
from controlplane.store.models import Deployment, Prompt, PromptVersion, Scope
from controlplane.webhooks.events import DEPLOYMENT_CREATED, DEPLOYMENT_ROLLED_BACK
from controlplane.webhooks.outbox import enqueue
from promptline.http.bodies import (
    json_response,
    parse_model,
    read_json,
)
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes

LIST_PROMPTS = Endpoint("GET /v1/prompts", LimitClass.READ)
CREATE_PROMPT = Endpoint("POST /v1/prompts", LimitClass.WRITE)
SHOW_PROMPT = Endpoint("GET /v1/prompts/:prompt_id", LimitClass.READ)
LIST_VERSIONS = Endpoint("GET /v1/prompts/:prompt_id/versions", LimitClass.READ)
SHOW_VERSION = Endpoint("GET /v1/prompts/:prompt_id/versions/:version", LimitClass.READ)
CREATE_VERSION = Endpoint("POST /v1/prompts/:prompt_id/versions", LimitClass.WRITE)
DEPLOY = Endpoint("POST /v1/prompts/:prompt_id/deploy", LimitClass.DEPLOY)
ROLLBACK = Endpoint("POST /v1/prompts/:prompt_id/rollback", LimitClass.DEPLOY)
HISTORY = Endpoint("GET /v1/prompts/:prompt_id/deployments", LimitClass.READ)

MAX_VARIABLES = 200

_ERROR_KINDS = {kind.value: kind for kind in ErrorKind}

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Body(BaseModel):
    """Request bodies: JSON types are not coerced (``"90"`` is not a weight)."""

    model_config = ConfigDict(strict=True, extra="ignore")


def _empty_if_null(value: Any) -> Any:
    """``null`` for an optional text is the same as leaving it out (docs/edge.md)."""
    return "" if value is None else value


OptionalText = Annotated[Text, BeforeValidator(_empty_if_null)]
OptionalLabel = Annotated[Label, BeforeValidator(_empty_if_null)]


class PromptIn(_Body):
    """A new prompt: its name (unique in the project) and an optional description."""

    name: Name
    description: OptionalText = ""


class VersionIn(_Body):
    """The next version's content, a commit message, and its variables (else found in it)."""

    content: Content
    message: OptionalText = ""
    variables: Annotated[list[Variable], Field(max_length=MAX_VARIABLES)] | None = None


class DeployIn(_Body):
    """``traffic``: ``[{"version": "v1", "weight": 90}, ...]`` summing to 100; ``rules``:
    optional targeting rules sending a segment (``"when"``) to other weights."""

    traffic: Any
    label: OptionalLabel = ""
    rules: Any = None


class GuardedDeployIn(_Body):
    """A guarded deploy: the guard decides the traffic, step by step (``controlplane.rollouts``)."""

    guard: GuardIn
    label: OptionalLabel = ""
    traffic: None = Field(
        default=None, description="Leave out: the guard's ramp decides the traffic."
    )
    rules: None = Field(default=None, description="Leave out: a guarded rollout has no rules.")


class DeployDocumented(_Body):
    """The deploy body as documented: ``traffic`` (and ``rules``), or a ``guard`` instead."""

    traffic: Any = Field(
        default=None,
        description='Required without `guard`: `[{"version": "v1", "weight": 90}, ...]` summing '
        "to 100. Leave out with `guard`.",
    )
    label: OptionalLabel = ""
    rules: Any = Field(default=None, description="Targeting rules; not with `guard`.")
    guard: GuardIn | None = Field(
        default=None,
        description="A guarded rollout of `candidate` against `baseline` (default: the stable "
        "version), ramped step by step while its guardrails hold (docs/rollouts.md).",
    )


async def _body(request: web.Request, model: type[ModelT]) -> ModelT:
    return parse_model(model, await read_json(request), ErrorKind.INVALID_REQUEST)


async def get_prompts(request: web.Request) -> web.Response:
    """Every prompt of the caller's project."""
    caller = await admit(request, Scope.READ, LIST_PROMPTS)
    async with caller.plane.sessions() as session:
        overviews = await prompt_overviews(session, caller.principal.project_id)
    return json_response(
        {"prompts": [_prompt(overview) for overview in overviews], "total": len(overviews)}
    )


async def post_prompt(request: web.Request) -> web.Response:
    """Create an empty prompt; versions are pushed to it afterwards."""
    caller = await admit(request, Scope.WRITE, CREATE_PROMPT)
    body = await _body(request, PromptIn)

    async def work(session: AsyncSession) -> Prompt:
        try:
            return await create_prompt(
                session, caller.principal.project_id, body.name, body.description
            )
        except PromptExists as error:
            raise ApiError(ErrorKind.CONFLICT, str(error), field="name") from error

    prompt = await commit(caller.plane, work)
    return json_response(_prompt(PromptOverview(prompt, 0, None, None)), status=201)


async def get_prompt(request: web.Request) -> web.Response:
    """One prompt with its versions (newest first) and the deployment in force."""
    caller = await admit(request, Scope.READ, SHOW_PROMPT)
    async with caller.plane.sessions() as session:
        prompt = await _find_prompt(session, caller, request)
        overview = await prompt_overview(session, prompt)
        versions = await versions_of(session, prompt.id)
    deployment = overview.deployment
    return json_response(
        _prompt(overview)
        | {
            "versions": [_version(prompt, version) for version in versions],
            "deployment": _deployment(prompt, deployment) if deployment is not None else None,
        }
    )


async def get_versions(request: web.Request) -> web.Response:
    """A prompt's versions, newest first."""
    caller = await admit(request, Scope.READ, LIST_VERSIONS)
    async with caller.plane.sessions() as session:
        prompt = await _find_prompt(session, caller, request)
        versions = await versions_of(session, prompt.id)
    return json_response(
        {"versions": [_version(prompt, version) for version in versions], "total": len(versions)}
    )


async def get_version(request: web.Request) -> web.Response:
    """One version, with its content, by number, ``vN``, content hash or id."""
    caller = await admit(request, Scope.READ, SHOW_VERSION)
    ref_text = request.match_info["version"]
    ref = parse_version_ref(ref_text)
    async with caller.plane.sessions() as session:
        prompt = await _find_prompt(session, caller, request)
        version = await find_version(session, prompt.id, ref) if ref is not None else None
    if version is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt.name}' has no version '{ref_text[:MAX_NAME_LENGTH]}'.",
        )
    return json_response(_version(prompt, version, content=True))


async def post_version(request: web.Request) -> web.Response:
    """Save the next version; it is not served until deployed (unless never deployed)."""
    caller = await admit(request, Scope.WRITE, CREATE_VERSION)
    body = await _body(request, VersionIn)

    async def work(session: AsyncSession) -> tuple[Prompt, PromptVersion]:
        prompt = await _find_prompt(session, caller, request)
        version = await push_next_version(
            session,
            prompt,
            body.content,
            message=body.message,
            created_by=actor(caller.principal),
            variables=body.variables,
        )
        return prompt, version

    prompt, version = await commit(caller.plane, work)
    return json_response(_version(prompt, version), status=201)


async def post_deploy(request: web.Request) -> web.Response:
    """Route traffic by weight (and optional targeting rules) over the prompt's versions, or
    start a guarded rollout (``guard``); either ends a rollout under guard, as made by hand."""
    caller = await admit(request, Scope.DEPLOY, DEPLOY)
    data = await read_json(request)
    if isinstance(data, dict) and data.get("guard") is not None:
        guarded = parse_model(GuardedDeployIn, data, ErrorKind.INVALID_REQUEST)
        return await _post_guarded_deploy(request, caller, guarded)
    body = parse_model(DeployIn, data, ErrorKind.INVALID_REQUEST)

    async def work(session: AsyncSession) -> tuple[Prompt, Deployment]:
        prompt = await _find_prompt(session, caller, request)
        return prompt, await deploy_split(session, prompt, body, actor(caller.principal))

    prompt, deployment = await commit(caller.plane, work)
    return json_response(_deployment(prompt, deployment), status=201)


async def _post_guarded_deploy(
    request: web.Request, caller: Caller, body: GuardedDeployIn
) -> web.Response:
    """Start a guarded rollout: its first step is the deployment answered."""

    async def work(session: AsyncSession) -> tuple[Prompt, Deployment]:
        prompt = await _find_prompt(session, caller, request)
        rows = await session.scalars(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
        )
        versions = {row.number: row.content_hash for row in rows}
        try:
            _rollout, deployment = await start_rollout(
                session,
                prompt,
                versions,
                body.guard,
                label=body.label,
                deployed_by=actor(caller.principal),
            )
        except GuardRefused as error:
            raise ApiError(ErrorKind.INVALID_REQUEST, str(error), field=error.field) from error
        return prompt, deployment

    prompt, deployment = await commit(caller.plane, work)
    return json_response(_deployment(prompt, deployment), status=201)


async def post_rollback(request: web.Request) -> web.Response:
    """All traffic back to the previous deployment that sent 100% to one version."""
    caller = await admit(request, Scope.DEPLOY, ROLLBACK)

    async def work(session: AsyncSession) -> tuple[Prompt, RolledBack]:
        prompt = await _find_prompt(session, caller, request)
        return prompt, await roll_back_by_hand(session, prompt, actor(caller.principal))

    prompt, done = await commit(caller.plane, work)
    return json_response(_rolled_back(prompt, done))


async def deploy_split(
    session: AsyncSession, prompt: Prompt, body: DeployIn, deployed_by: str
) -> Deployment:
    """Record a deployment made by hand, in the caller's transaction: the split and rules
    checked against the prompt's versions (an ``ApiError`` naming the field), its webhook
    event queued, and a rollout under guard ended (the API route and the dashboard)."""
    await lock_prompt(session, prompt)
    versions = VersionSet(
        await session.scalars(select(PromptVersion).where(PromptVersion.prompt_id == prompt.id))
    )
    try:
        traffic = parse_traffic(body.traffic, versions)
        rules = parse_rules(body.rules, versions)
    except DeploymentSpecError as error:
        kind = _ERROR_KINDS.get(error.code, ErrorKind.INVALID_REQUEST)
        raise ApiError(kind, error.message, field=error.field) from error
    deployment = await record_deployment(
        session,
        prompt,
        traffic=traffic.to_json(),
        rules=[rule.to_json() for rule in rules],
        label=body.label,
        deployed_by=deployed_by,
    )
    await enqueue(  # in the deploy's transaction: both commit, or neither
        session, prompt.project_id, DEPLOYMENT_CREATED, _deployment(prompt, deployment)
    )
    await end_by_hand(
        session, prompt, deployed_by, f"deployed {encode(IdShape.DEPLOYMENT, deployment.id)}"
    )
    return deployment


async def roll_back_by_hand(session: AsyncSession, prompt: Prompt, by: str) -> RolledBack:
    """Roll back in the caller's transaction (409 when there is nothing to roll back to),
    ending a rollout under guard and queueing the webhook event."""
    try:
        done = await rollback(session, prompt, by)
    except NothingToRollBack as error:
        raise ApiError(ErrorKind.CONFLICT, str(error)) from error
    await end_by_hand(
        session, prompt, by, f"rolled back to {encode(IdShape.DEPLOYMENT, done.restored.id)}"
    )
    await enqueue(session, prompt.project_id, DEPLOYMENT_ROLLED_BACK, _rolled_back(prompt, done))
    return done


async def get_deployments(request: web.Request) -> web.Response:
    """A prompt's deployment history, newest (the one in force) first."""
    caller = await admit(request, Scope.READ, HISTORY)
    async with caller.plane.sessions() as session:
        prompt = await _find_prompt(session, caller, request)
        rows = await history(session, prompt.id)
    return json_response(
        {"deployments": [_deployment(prompt, row) for row in rows], "total": len(rows)}
    )


async def _find_prompt(session: AsyncSession, caller: Caller, request: web.Request) -> Prompt:
    ref = request.match_info["prompt_id"]
    prompt = await find_prompt(session, caller.principal.project_id, ref)
    if prompt is None:
        raise ApiError(ErrorKind.NOT_FOUND, f"Prompt '{ref[:MAX_NAME_LENGTH]}' not found.")
    return prompt


def _prompt(overview: PromptOverview) -> dict[str, Any]:
    prompt = overview.prompt
    active = main_version(overview.deployment, overview.latest)
    return {
        "id": encode(IdShape.PROMPT, prompt.id),
        "prompt_uuid": str(prompt.id),
        "name": prompt.name,
        "description": prompt.description,
        "active_version": version_label(active) if active is not None else None,
        "version_count": overview.version_count,
        "created_at": iso(prompt.created_at),
        "updated_at": iso(prompt.updated_at),
    }


def _version(prompt: Prompt, version: PromptVersion, *, content: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "version_id": encode(IdShape.VERSION, version.id),
        "version": version_label(version.number),
        "prompt_id": encode(IdShape.PROMPT, prompt.id),
        "prompt_uuid": str(prompt.id),
        "content_hash": version.content_hash,
        "message": version.message,
        "variables": list(version.variables),
        "created_by": version.created_by,
        "created_at": iso(version.created_at),
    }
    if content:
        shown["content"] = version.content
    return shown


def _rolled_back(prompt: Prompt, done: RolledBack) -> dict[str, Any]:
    return {
        "rolled_back_to": encode(IdShape.DEPLOYMENT, done.restored.id),
        "version": version_label(done.version),
        "rolled_back_at": iso(done.deployment.deployed_at),
        "deployment_id": encode(IdShape.DEPLOYMENT, done.deployment.id),
        "prompt_id": encode(IdShape.PROMPT, prompt.id),
        "prompt_uuid": str(prompt.id),
    }


def _deployment(prompt: Prompt, deployment: Deployment) -> dict[str, Any]:
    restored = deployment.rollback_of
    return {
        "deployment_id": encode(IdShape.DEPLOYMENT, deployment.id),
        "prompt_id": encode(IdShape.PROMPT, prompt.id),
        "prompt_uuid": str(prompt.id),
        "label": deployment.label,
        "traffic": deployment.traffic,
        "rules": deployment.rules,
        "deployed_at": iso(deployment.deployed_at),
        "deployed_by": deployment.deployed_by,
        "rolled_back_to": encode(IdShape.DEPLOYMENT, restored) if restored else None,
        "reason": deployment.reason,
        "rollout_id": (
            encode(IdShape.ROLLOUT, deployment.rollout_id) if deployment.rollout_id else None
        ),
    }


TAG = "prompts (seed 001)"
_NOT_FOUND = (ErrorKind.NOT_FOUND,)
_WRITE_RACE = (ErrorKind.CONFLICT,)
"""Concurrent writes to one prompt that keep racing: 409 with Retry-After."""

RESOLVE_OP = Operation(
    summary="Resolve a prompt for a user",
    description="Which version this user gets, with its variables filled in, answered from "
    "memory. The same user always gets the same version of a deployment.",
    tag=TAG,
    scope=Scope.READ,
    body=ResolveIn,
    answers={200: Answer("The version served.", ResolveOut)},
    errors=_NOT_FOUND,
)
LIST_PROMPTS_OP = Operation(
    summary="List prompts",
    description="Every prompt of the key's project.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The prompts.", PromptList)},
)
CREATE_PROMPT_OP = Operation(
    summary="Create a prompt",
    description="An empty prompt; versions are pushed to it afterwards. 409 if the name is taken.",
    tag=TAG,
    scope=Scope.WRITE,
    body=PromptIn,
    answers={201: Answer("Created.", PromptOut)},
    errors=(ErrorKind.CONFLICT,),
)
SHOW_PROMPT_OP = Operation(
    summary="Show a prompt",
    description="One prompt with its versions (newest first) and the deployment in force.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The prompt.", PromptDetail)},
    errors=_NOT_FOUND,
)
LIST_VERSIONS_OP = Operation(
    summary="List a prompt's versions",
    description="Newest first, without their content.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The versions.", VersionList)},
    errors=_NOT_FOUND,
)
CREATE_VERSION_OP = Operation(
    summary="Push a version",
    description="The prompt's next version (immutable, numbered v1, v2, ...). It is not served "
    "until deployed, unless the prompt was never deployed.",
    tag=TAG,
    scope=Scope.WRITE,
    body=VersionIn,
    answers={201: Answer("Created.", VersionOut)},
    errors=_NOT_FOUND + _WRITE_RACE,
)
SHOW_VERSION_OP = Operation(
    summary="Show a version",
    description="One version with its content.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The version.", VersionOut)},
    errors=_NOT_FOUND,
)
DEPLOY_OP = Operation(
    summary="Deploy",
    description="Route traffic by weight (summing to 100) over the prompt's versions, with "
    "optional targeting rules; or, with `guard`, start a guarded rollout whose first step is "
    "the deployment answered. A version naming no version of the prompt is 404; weights "
    "not summing to 100 are 422 `weight_mismatch`; a guard that cannot start is 400 naming "
    "its field. Either ends a guarded rollout in progress.",
    tag=TAG,
    scope=Scope.DEPLOY,
    body=DeployDocumented,
    answers={201: Answer("Deployed (with a guard: its first step).", DeploymentOut)},
    errors=_NOT_FOUND + _WRITE_RACE + (ErrorKind.WEIGHT_MISMATCH,),
)
ROLLBACK_OP = Operation(
    summary="Roll back",
    description="All traffic back to the previous deployment that sent 100% to one version; "
    "409 when there is none.",
    tag=TAG,
    scope=Scope.DEPLOY,
    answers={200: Answer("Rolled back.", RollbackOut)},
    errors=_NOT_FOUND + _WRITE_RACE,
)
HISTORY_OP = Operation(
    summary="Deployment history",
    description="A prompt's deployments, newest (the one in force) first.",
    tag=TAG,
    scope=Scope.READ,
    answers={200: Answer("The deployments.", DeploymentList)},
    errors=_NOT_FOUND,
)


def add_routes(app: web.Application) -> None:
    """Register seed 001's routes."""
    router = served_routes(app)
    router.add_post("/v1/resolve", partial(post_resolve, KeptPlane()), RESOLVE_OP)
    router.add_get("/v1/prompts", get_prompts, LIST_PROMPTS_OP)
    router.add_post("/v1/prompts", post_prompt, CREATE_PROMPT_OP)
    router.add_get("/v1/prompts/{prompt_id}", get_prompt, SHOW_PROMPT_OP)
    router.add_get("/v1/prompts/{prompt_id}/versions", get_versions, LIST_VERSIONS_OP)
    router.add_post("/v1/prompts/{prompt_id}/versions", post_version, CREATE_VERSION_OP)
    router.add_get("/v1/prompts/{prompt_id}/versions/{version}", get_version, SHOW_VERSION_OP)
    router.add_post("/v1/prompts/{prompt_id}/deploy", post_deploy, DEPLOY_OP)
    router.add_post("/v1/prompts/{prompt_id}/rollback", post_rollback, ROLLBACK_OP)
    router.add_get("/v1/prompts/{prompt_id}/deployments", get_deployments, HISTORY_OP)
