"""The default baseline is the stable version: the newest deployment that sent it all traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from compare.stable import newest_stable
from controlplane import authoring, tenancy
from controlplane.catalog import CatalogWatcher
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from controlplane.store.models import Deployment
from controlplane.store.revision import bump_revision
from promptline.settings import Settings
from sql.runner import migrate
from tests.compare.support import compare_app

pytestmark = [pytest.mark.clickhouse]

T0 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _split(*weights: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"version": f"v{number}", "weight": weight} for number, weight in weights]


def _deployments(*splits: list[dict[str, Any]], rules: list[Any] | None = None) -> list[Deployment]:
    return [Deployment(traffic=split, rules=rules or []) for split in splits]


def test_the_newest_deployment_of_one_version_alone_is_stable() -> None:
    known = {1, 2, 3}
    canary = _split((1, 40), (2, 60))
    assert newest_stable(_deployments(canary, _split((1, 100)), _split((2, 100))), known) == 1
    assert newest_stable(_deployments(_split((3, 100)), canary, _split((1, 100))), known) == 3
    assert newest_stable(_deployments(_split((1, 0), (2, 100)), _split((1, 100))), known) == 2
    assert newest_stable(_deployments(canary, _split((1, 50), (2, 50))), known) is None
    gone = _deployments(canary, _split((4, 100)), _split((2, 100)))
    assert newest_stable(gone, known) == 2  # v4 is gone
    assert newest_stable([], known) is None
    segment = [{"name": "eu", "when": [], "traffic": _split((2, 100))}]
    ruled = _deployments(_split((1, 100)), rules=segment) + _deployments(_split((3, 100)))
    assert newest_stable(ruled, known) == 3  # 100% v1 with a rule to v2 is a canary


@pytest.mark.parametrize(
    ("history", "baseline"),
    [
        # v2 is the canary, v1 the stable version it is measured against.
        ([_split((1, 100)), _split((1, 50), (2, 50))], 1),
        ([_split((1, 100)), _split((1, 40), (2, 60))], 1),
        # v2 was stable before v1 became it: the newest stable deployment counts.
        ([_split((2, 100)), _split((1, 100)), _split((1, 40), (2, 60))], 1),
        # The canary was promoted: v2 serves everything, and is stable.
        ([_split((1, 100)), _split((1, 40), (2, 60)), _split((2, 100))], 2),
        # Never deployed to one version alone: the largest share in force.
        ([_split((1, 70), (2, 30))], 1),
        ([_split((1, 30), (2, 70))], 2),
    ],
)
async def test_compare_measures_a_canary_against_the_stable_version(
    settings: Settings, history: list[list[dict[str, Any]]], baseline: int
) -> None:
    await migrate(settings)
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            org = await tenancy.create_organization(session, "acme", "team")
            project = await tenancy.create_project(session, org.id, "shop")
            key = await tenancy.create_api_key(session, project.id, ["read"])
            prompt = await authoring.get_or_create_prompt(session, project.id, "checkout")
            for text in ("one {{x}}", "two {{x}}"):
                await authoring.push_version(session, prompt, text)
            for minutes, traffic in enumerate(history):
                session.add(
                    Deployment(
                        prompt_id=prompt.id,
                        traffic=traffic,
                        rules=[],
                        deployed_at=T0 + timedelta(minutes=minutes),
                    )
                )
            await bump_revision(session)
        watcher = CatalogWatcher(sessions)
        await watcher.refresh()
    finally:
        await engine.dispose()
    app = compare_app(settings, watcher.current)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/dashboard/prompts/checkout/compare",
            headers={"Authorization": f"Bearer {key.secret}"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["baseline"] == baseline
    flags = {item["version"]: item["is_baseline"] for item in body["versions"]}
    assert flags == {1: baseline == 1, 2: baseline == 2}
