"""``POST /v1/resolve``, the hot path: which version a user gets, from memory only.

Its own module, apart from the family's other routes (``controlplane.api.promptlab``),
whose pydantic body models keep a module from being compiled: this one is compiled with
mypyc in release builds (ARCHITECTURE.md, "Resolve's hot path is compiled").
"""

from __future__ import annotations

from aiohttp import web

from controlplane.api.auth import authenticate
from controlplane.api.context import KeptPlane
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.resolve_io import Answers, parse_resolve, prompt_name
from controlplane.resolve import MissingVariablesError, resolve
from controlplane.store.models import Scope
from promptline.http.answers import ok_json
from promptline.http.bodies import buffered_body, loads_body, read_json
from promptline.http.errors import ApiError, ErrorKind

RESOLVE = Endpoint("POST /v1/resolve", LimitClass.RESOLVE)
_ANSWERS = Answers()


async def post_resolve(kept: KeptPlane, request: web.Request) -> web.Response:
    """Which version this user gets; answered from the in-memory catalog only.

    Bound to its app's :class:`KeptPlane` when the route is added. Admit's checks, inline
    and without a coroutine: the hot path.
    """
    plane = kept.plane or kept.of(request)
    catalog = plane.catalog.current
    principal = authenticate(request, catalog, Scope.READ)
    if not plane.limiter.count(principal, RESOLVE):
        await plane.limiter.check(principal, RESOLVE)  # the counters are remote (Redis)
    raw = buffered_body(request)  # the usual case needs no coroutine to read the body
    prompt, user_id, context, strict = parse_resolve(
        loads_body(raw) if raw else await read_json(request)
    )
    project_id = principal.project_id
    try:
        resolution = resolve(
            catalog, project_id, prompt_name(catalog, project_id, prompt), user_id, context, strict
        )
    except MissingVariablesError as error:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(error), field="context") from error
    if resolution is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{prompt}' not found, or it has no version to serve yet.",
            field="prompt",
        )
    plane.exposures.expose(principal, resolution, user_id)
    return ok_json(_ANSWERS.encode(resolution))
