"""The compare routes: per-version analytics of a prompt, and each version against a baseline.

- ``GET /dashboard/prompts/{name}/compare`` (seed 002): the prompt by name;
- ``GET /v1/prompts/{prompt_id}/compare`` and ``GET /api/v1/prompts/{prompt_id}/compare``.

Each takes the prompt by any id (``prm_``, ``pmt_``, ``tmpl-``, UUID) or its name, like
every prompt reference; one that names no prompt of the key's project is 404 naming the
path parameter (``name`` or ``prompt_id``).

Query parameters: ``from`` and ``to`` (ISO 8601, UTC if no offset; ``[from, to)``),
``baseline`` (a version: ``4``, ``v4``, a content hash or a version id; default: the
stable version, ``compare/stable.py``), ``bucket`` (``hour`` or ``day``: adds a series per
version). A ``read`` key is required; another project's prompt is 404, as is a baseline
naming no version of the prompt. Each route counts against the key's per-plan limit for
reads (``controlplane.api.context.admit``; 429 with Retry-After over it). ClickHouse
unreachable is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.exceptions import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from compare.queries import Scope, read_figures
from compare.report import Attributed, attribute, build_report
from compare.report_model import CompareReport
from compare.stable import stable_from_history
from compare.versions import fallback_baseline, find_version
from compare.warehouse import WAREHOUSE, Warehouse
from compare.window import Bucket, Window, parse_instant
from controlplane.api.context import admit
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.api.references import MAX_NAME_LENGTH, prompt_in_catalog
from controlplane.catalog import PromptEntry
from controlplane.store.models import Scope as KeyScope
from promptline.http.bodies import json_response
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation, Param
from promptline.http.routes import served_routes

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0

# Reads, each route in its own bucket with the limits of ``GET /prompts`` (seed 001's table).
BY_NAME = Endpoint("GET /dashboard/prompts/:name/compare", LimitClass.READ)
BY_V1_REFERENCE = Endpoint("GET /v1/prompts/:prompt_id/compare", LimitClass.READ)
BY_API_REFERENCE = Endpoint("GET /api/v1/prompts/:prompt_id/compare", LimitClass.READ)


def _window(request: web.Request) -> Window:
    bounds = {}
    for name in ("from", "to"):
        text = request.query.get(name)
        if text is None:
            continue
        try:
            bounds[name] = parse_instant(text)
        except ValueError as error:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"'{name}' must be an ISO 8601 time, e.g. 2026-02-19T14:30:00Z.",
                field=name,
            ) from error
    try:
        return Window(bounds.get("from"), bounds.get("to"))
    except ValueError as error:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(error), field="from") from error


def _bucket(request: web.Request) -> Bucket | None:
    text = request.query.get("bucket")
    if text is None:
        return None
    try:
        return Bucket(text)
    except ValueError as error:
        raise ApiError(
            ErrorKind.INVALID_REQUEST, "'bucket' must be 'hour' or 'day'.", field="bucket"
        ) from error


async def _compare(request: web.Request, endpoint: Endpoint, field: str) -> web.Response:
    caller = await admit(request, KeyScope.READ, endpoint)
    catalog, principal = caller.catalog, caller.principal
    reference = request.match_info[field]
    entry = prompt_in_catalog(catalog, principal.project_id, reference)
    if entry is None:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Prompt '{reference[:MAX_NAME_LENGTH]}' not found in your project.",
            field=field,
        )
    report = await comparison(
        request.app[WAREHOUSE],
        caller.plane.sessions,
        principal.project_id,
        entry,
        Scope(principal.project_id, entry.id, _window(request), _bucket(request)),
        request.query.get("baseline"),
    )
    return json_response(report)


async def comparison(
    warehouse: Warehouse,
    sessions: async_sessionmaker[AsyncSession],
    project_id: uuid.UUID,
    entry: PromptEntry,
    scope: Scope,
    requested_baseline: str | None,
) -> dict[str, Any]:
    """The compare report of one prompt of ``project_id`` over ``scope`` (the routes' and
    the dashboard's): 404 for a baseline naming no version, 503 while ClickHouse fails."""
    baseline: int | None = None
    if requested_baseline is not None:
        baseline = find_version(entry, requested_baseline)
        if baseline is None:
            raise ApiError(
                ErrorKind.NOT_FOUND,
                f"Prompt '{entry.name}' has no version '{requested_baseline[:MAX_NAME_LENGTH]}'.",
                field="baseline",
            )
    # The store's deployment history is read while ClickHouse answers, not after it. It is
    # waited for even when ClickHouse fails: a store read cut off midway (cancelled) can
    # leave its connection in use when the service closes it.
    history = None
    if baseline is None:
        history = asyncio.create_task(stable_from_history(sessions, entry))
    try:
        totals, series = await _figures(warehouse, entry, scope)
    finally:
        if history is not None:
            await asyncio.wait([history])
    if history is not None:
        baseline = history.result()
    if baseline is None:
        baseline = fallback_baseline(entry, totals.events())
    return build_report(entry, scope, totals, series, baseline)


async def _figures(
    warehouse: Warehouse, entry: PromptEntry, scope: Scope
) -> tuple[Attributed, Attributed | None]:
    """The window's figures per version, and the buckets' if asked: 503 while ClickHouse
    fails."""
    try:
        figures = await read_figures(warehouse.rows, scope)
        series = None
        if scope.bucket is not None:  # one read gives both (grouping sets)
            whole, buckets = figures.split()
            figures, series = whole, attribute(entry, buckets)
        return attribute(entry, figures), series
    except (OperationalError, OSError) as error:
        log.warning("compare of prompt %s failed: %r", entry.id, error)
        raise ApiError(
            ErrorKind.UNAVAILABLE,
            "The analytics store is unavailable; retry later.",
            retry_after=RETRY_AFTER_SECONDS,
        ) from error


async def compare_by_name(request: web.Request) -> web.Response:
    """Seed 002: ``GET /dashboard/prompts/{name}/compare``."""
    return await _compare(request, BY_NAME, "name")


async def compare_by_v1_reference(request: web.Request) -> web.Response:
    """``GET /v1/prompts/{prompt_id}/compare``."""
    return await _compare(request, BY_V1_REFERENCE, "prompt_id")


async def compare_by_api_reference(request: web.Request) -> web.Response:
    """``GET /api/v1/prompts/{prompt_id}/compare``."""
    return await _compare(request, BY_API_REFERENCE, "prompt_id")


def _operation(summary: str, tag: str) -> Operation:
    return Operation(
        summary=summary,
        description="Per-version analytics of the prompt over a window, each version against "
        "a baseline with 95% confidence intervals and p-values. 404 for a prompt not in the "
        "key's project or a baseline naming no version of it; 503 with Retry-After while "
        "ClickHouse is unreachable.",
        tag=tag,
        scope=KeyScope.READ,
        answers={200: Answer("The comparison.", CompareReport)},
        errors=(ErrorKind.INVALID_REQUEST, ErrorKind.NOT_FOUND, ErrorKind.UNAVAILABLE),
        parameters=(
            Param("from", "Start of the window, ISO 8601 (UTC if no offset), inclusive."),
            Param("to", "End of the window, ISO 8601, exclusive."),
            Param(
                "baseline",
                "A version (`4`, `v4`, a content hash or an id); default: the stable version.",
            ),
            Param("bucket", "Adds a series per version.", schema={"enum": ["hour", "day"]}),
        ),
    )


BY_NAME_OP = _operation("Compare a prompt's versions (by name)", "dashboard (seed 002)")
BY_V1_OP = _operation("Compare a prompt's versions", "prompts (seed 001)")
BY_API_OP = _operation("Compare a prompt's versions", "edge (seeds 000, 004)")


def add_routes(app: web.Application) -> None:
    """Register the compare routes; the app must hold a ``WAREHOUSE`` and a ``CONTROL_PLANE``."""
    for path in ("/dashboard/prompts/{name}/compare", "/dashboard/prompts/{name}/compare/"):
        served_routes(app).add_get(path, compare_by_name, BY_NAME_OP)
    served_routes(app).add_get("/v1/prompts/{prompt_id}/compare", compare_by_v1_reference, BY_V1_OP)
    served_routes(app).add_get(
        "/api/v1/prompts/{prompt_id}/compare", compare_by_api_reference, BY_API_OP
    )
