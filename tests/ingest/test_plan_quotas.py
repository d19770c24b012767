"""Monthly signal limits by plan (seed 000: free 1,000, team 10,000, business 100,000)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.catalog import Principal
from ingest.context import EDGE_CONTEXT
from ingest.quota import MemoryQuota, month_of, monthly_signal_limit
from tests.ingest.conftest import Client
from tests.ingest.support import ORG, FakeProducer, auth, build_catalog, edge_app

URL = "/api/v1/prompts/checkout-assistant/signals"
SEED_LIMITS = {"free": 1_000, "team": 10_000, "business": 100_000}


def _principal(plan: str, overrides: dict[str, Any] | None = None) -> Principal:
    return Principal(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), plan, frozenset({"ingest"}), overrides or {}
    )


@pytest.mark.parametrize(("plan", "limit"), SEED_LIMITS.items())
def test_each_plan_has_the_seed_limit(plan: str, limit: int) -> None:
    assert monthly_signal_limit(_principal(plan)) == limit


def test_an_override_wins_and_a_bad_one_is_ignored() -> None:
    assert monthly_signal_limit(_principal("team", {"signals_per_month": 25})) == 25
    assert monthly_signal_limit(_principal("team", {"signals_per_month": 0})) == 0
    for bad in (-1, "500", True, 2.5):
        assert monthly_signal_limit(_principal("team", {"signals_per_month": bad})) == 10_000


def test_an_unknown_plan_gets_the_free_limit() -> None:
    assert monthly_signal_limit(_principal("enterprise")) == 1_000


@pytest.fixture(params=["team", "business"])
async def planned(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Client, MemoryQuota]]:
    app = edge_app(FakeProducer(), build_catalog(plan=request.param))
    quota = app[EDGE_CONTEXT].quota
    assert isinstance(quota, MemoryQuota)
    async with TestClient(TestServer(app)) as client:
        yield request.param, client, quota


async def test_the_route_refuses_exactly_past_the_plan_limit(
    planned: tuple[str, Client, MemoryQuota],
) -> None:
    """The last unit of a team or business month is granted, the next one is 429."""
    plan, client, quota = planned
    limit = SEED_LIMITS[plan]
    month = month_of(datetime.now(UTC))
    quota.used[(ORG, month)] = limit - 1
    last = await client.post(URL, json={"value": "positive"}, headers=auth())
    over = await client.post(URL, json={"value": "positive"}, headers=auth())
    assert (last.status, over.status) == (201, 429)
    error = (await over.json())["error"]
    assert error["code"] == "rate_limited"
    assert f"Monthly signal limit of {limit} reached" in error["message"]
    assert int(over.headers["Retry-After"]) >= 1
    assert quota.used[(ORG, month)] == limit
