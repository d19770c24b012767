"""Compare test support: storing records as a worker does, a catalog, an app, expectations."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient

from compare import api as compare_api
from compare.warehouse import WAREHOUSE, Warehouse
from controlplane.api.context import CONTROL_PLANE, ControlPlane
from controlplane.api.ratelimit import RateLimiter
from controlplane.catalog import (
    Catalog,
    CatalogWatcher,
    DeploymentRecord,
    Principal,
    PromptEntry,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.keys import digest
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from promptline.clickhouse import connect
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from promptline.http.openapi import build_document
from promptline.settings import Settings
from schemas.records import RecordBase
from tests.support.documented import assert_documented, pattern_of
from workers.sink import ClickHouseSink
from workers.tables import TABLES, Lineage, TableSpec

READ_KEY, INGEST_KEY, OTHER_KEY = "pl_sk_compare_read", "pl_sk_compare_ingest", "pl_sk_other"
FREE_KEY, LIMITED_KEY = "pl_sk_compare_free", "pl_sk_compare_limited"
"""Read keys of the project on the free plan, and on business with compare limited to 1/minute."""
QUANTILE_ACCURACY = 0.01
"""The relative accuracy of the latency sketch (quantilesDD(0.01, ...))."""


def spec_of(record: RecordBase) -> TableSpec:
    return next(spec for spec in TABLES.values() if isinstance(record, spec.record))


async def store(settings: Settings, records: Sequence[RecordBase]) -> None:
    """Insert records as a worker does (one block per table), so the views see them."""
    sink = ClickHouseSink(await connect(settings))
    try:
        by_spec: dict[str, tuple[TableSpec, list[list[Any]]]] = {}
        for offset, record in enumerate(records):
            spec = spec_of(record)
            row = spec.to_row(record, Lineage(0, offset))
            by_spec.setdefault(spec.table, (spec, []))[1].append([*row, offset, offset, 0, 0, 0])
        for spec, rows in by_spec.values():
            await sink.write(spec.table, spec.insert_columns, rows, uuid.uuid4().hex)
    finally:
        await sink.close()


def catalog_with(project_id: uuid.UUID, entries: Sequence[PromptEntry]) -> Catalog:
    org = uuid.uuid4()

    def principal(
        project: uuid.UUID, scopes: set[str], plan: str = "business", **overrides: str
    ) -> Principal:
        return Principal(uuid.uuid4(), project, org, plan, frozenset(scopes), overrides)

    limited = {"GET /api/v1/prompts/{prompt_id}/compare": "1/minute"}
    return Catalog(
        revision=1,
        principals={
            digest(READ_KEY): principal(project_id, {"read"}),
            digest(INGEST_KEY): principal(project_id, {"ingest"}),
            digest(OTHER_KEY): principal(uuid.uuid4(), {"read"}),
            digest(FREE_KEY): principal(project_id, {"read"}, "free"),
            digest(LIMITED_KEY): principal(project_id, {"read"}, **limited),
        },
        prompts={entry.id: entry for entry in entries},
    )


def prompt_entry(
    project_id: uuid.UUID,
    name: str,
    versions: int,
    split: list[tuple[int, int]] | None = None,
) -> PromptEntry:
    """A prompt with ``versions`` versions, deployed with ``split`` [(number, weight)]."""
    records = [
        VersionRecord(uuid.uuid4(), number, f"{name} v{number}: {{{{input}}}}")
        for number in range(1, versions + 1)
    ]
    deployments = []
    if split is not None:
        traffic = [{"version": f"v{number}", "weight": weight} for number, weight in split]
        deployments.append(
            DeploymentRecord(uuid.uuid4(), "test", traffic, [], datetime(2026, 1, 1, tzinfo=UTC))
        )
    return build_prompt_entry(uuid.uuid4(), project_id, name, records, deployments)


def compare_app(settings: Settings, catalog: Catalog) -> web.Application:
    """The compare routes over ``catalog``, with the store of ``settings`` (migrated at startup)
    for the deployment history, and in-memory rate limits as one process keeps them."""
    engine = create_engine(settings.database_url)
    watcher = CatalogWatcher(session_factory(engine))
    watcher.current = catalog
    limiter = RateLimiter()
    app = web.Application(middlewares=[error_middleware(dialect_for)])

    async def migrate_store(_app: web.Application) -> None:
        await upgrade(settings.database_url)

    async def close_store(_app: web.Application) -> None:
        await limiter.close()
        await engine.dispose()

    app.on_startup.append(migrate_store)
    app.on_cleanup.append(close_store)
    app[CONTROL_PLANE] = ControlPlane(catalog=watcher, limiter=limiter)
    app[WAREHOUSE] = Warehouse(settings)

    async def close_warehouse(app: web.Application) -> None:
        await app[WAREHOUSE].close()

    app.on_cleanup.append(close_warehouse)
    compare_api.add_routes(app)
    return app


def auth(key: str = READ_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def compare_answer(
    client: TestClient[web.Request, web.Application], path: str, **params: str
) -> dict[str, Any]:
    """A compare answer (200), checked against the API document."""
    response = await client.get(path, params=params, headers=auth())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert client.app is not None
    document = build_document(client.app)  # the answer is the one documented
    assert_documented(document, "GET", pattern_of(document, path), 200, body)
    return body


def quantile_bounds(samples: Sequence[float], level: float) -> tuple[float, float]:
    """Where the sketch's answer for ``level`` must lie: the neighbouring order statistics of
    rank level*(n-1), widened by the sketch's relative accuracy."""
    ordered = sorted(samples)
    rank = level * (len(ordered) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    return low * (1 - QUANTILE_ACCURACY), high * (1 + QUANTILE_ACCURACY)


def mean(samples: Sequence[float]) -> float | None:
    return float(np.mean(samples)) if samples else None
