"""The compare routes against the real ClickHouse: figures, windows, buckets, baselines, errors."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from scipy import stats as scipy_stats

from controlplane.catalog import PromptEntry
from controlplane.ids import IdShape, encode
from promptline.devstack.services import free_port
from promptline.settings import Settings
from schemas.records import AnalyticsRecord, RecordBase, SignalRecord, UsageRecord
from sql.runner import migrate
from tests.compare.support import (
    FREE_KEY,
    INGEST_KEY,
    LIMITED_KEY,
    OTHER_KEY,
    auth,
    catalog_with,
    compare_answer,
    compare_app,
    mean,
    prompt_entry,
    quantile_bounds,
    store,
)
from tests.workers.helpers import Tenant, analytics, signal, usage

pytestmark = [pytest.mark.clickhouse]

Client = TestClient[web.Request, web.Application]
START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


class World:
    """One project's prompt, its events, and what they should add up to per version."""

    def __init__(self) -> None:
        self.tenant = Tenant()
        self.entry = prompt_entry(self.tenant.project_id, "checkout", 3, split=[(1, 90), (2, 10)])
        self.other = prompt_entry(uuid.uuid4(), "elsewhere", 1)
        self.records: list[RecordBase] = []
        rng = random.Random(11)
        self.traces = {number: [uuid.uuid4() for _ in range(6)] for number in (1, 2, 3)}
        for number in (1, 2):
            digest = self.entry.versions_by_number[number].content_hash
            for n in range(150 * (3 - number)):
                at = START + timedelta(minutes=rng.uniform(0, 5 * 60))
                latency = rng.lognormvariate(5.5 + 0.2 * number, 0.4)
                cost = rng.uniform(0.001, 0.01) if n % 5 else None
                score = rng.uniform(0, 1) + 0.1 * number if n % 3 else None
                self.records.append(
                    analytics(
                        self.tenant,
                        self.entry.id,
                        digest,
                        latency=latency,
                        cost=cost,
                        score=score,
                        at=at,
                    )
                )
            for n in range(60):
                at = START + timedelta(minutes=rng.uniform(0, 5 * 60))
                value = "positive" if rng.random() < 0.4 + 0.3 * number else "negative"
                metadata: dict[str, Any] = (
                    {"version": f"v{number}"}
                    if n % 3 == 0
                    else {"version_hash": digest}
                    if n % 3 == 1
                    else {"trace_id": str(self.traces[number][n % 6])}
                )
                self.records.append(
                    signal(self.tenant, self.entry.id, value, metadata=metadata, at=at)  # type: ignore[arg-type]
                )
        for number, traces in self.traces.items():
            digest = self.entry.versions_by_number[number].content_hash
            for n, trace in enumerate(traces * 2):  # two spans per trace
                at = START + timedelta(minutes=7 * n)
                self.records.append(
                    usage(
                        self.tenant,
                        self.entry.id,
                        number,
                        digest,
                        trace,
                        span_id=uuid.uuid4(),
                        at=at,
                    )
                )
        self.records.append(signal(self.tenant, self.entry.id, "positive", at=START))
        self.records.append(
            signal(
                self.tenant,
                self.entry.id,
                "negative",
                metadata={"trace_id": str(uuid.uuid4())},
                at=START,
            )
        )

    def expected(
        self, number: int, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, Any]:
        def inside(record: RecordBase) -> bool:
            at = record.received_at
            return (start is None or at >= start) and (end is None or at < end)

        digest = self.entry.versions_by_number[number].content_hash
        number_of = {v.content_hash: n for n, v in self.entry.versions_by_number.items()}
        number_of_trace = {str(t): n for n, traces in self.traces.items() for t in traces}
        events: list[AnalyticsRecord] = []
        votes: list[str] = []
        links: list[UsageRecord] = []
        for record in filter(inside, self.records):
            if isinstance(record, AnalyticsRecord) and record.version_hash == digest:
                events.append(record)
            elif isinstance(record, UsageRecord) and record.version == number:
                links.append(record)
            elif isinstance(record, SignalRecord):
                meta = record.metadata or {}
                if "version" in meta:
                    owner = int(meta["version"].removeprefix("v"))
                elif "version_hash" in meta:
                    owner = number_of[meta["version_hash"]]
                else:
                    owner = number_of_trace.get(meta.get("trace_id", ""), 0)
                if owner == number:
                    votes.append(record.value)
        return {
            "latencies": [r.latency_ms for r in events],
            "costs": [r.cost_usd for r in events if r.cost_usd is not None],
            "scores": [r.score for r in events if r.score is not None],
            "positive": votes.count("positive"),
            "negative": votes.count("negative"),
            "links": len(links),
            "traces": len({r.trace_id for r in links}),
        }


@pytest.fixture
async def world(migrated_clickhouse: Settings) -> World:
    world = World()
    await store(migrated_clickhouse, world.records)
    return world


@pytest.fixture
async def migrated_clickhouse(settings: Settings) -> Settings:
    await migrate(settings)
    return settings


@pytest.fixture
async def client(migrated_clickhouse: Settings, world: World) -> AsyncIterator[Client]:
    catalog = catalog_with(world.tenant.project_id, [world.entry, world.other])
    async with TestClient(TestServer(compare_app(migrated_clickhouse, catalog))) as test_client:
        yield test_client


def _check_version(item: dict[str, Any], expected: dict[str, Any]) -> None:
    latencies = expected["latencies"]
    assert item["events"] == len(latencies)
    assert item["latency_ms"]["count"] == len(latencies)
    assert item["latency_ms"]["mean"] == pytest.approx(mean(latencies), rel=1e-12)
    for name, level in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        low, high = quantile_bounds(latencies, level)
        assert low <= item["latency_ms"][name] <= high, name
    assert item["cost_usd"]["count"] == len(expected["costs"])
    assert item["cost_usd"]["total"] == pytest.approx(sum(expected["costs"]), rel=1e-12)
    assert item["cost_usd"]["mean"] == pytest.approx(mean(expected["costs"]), rel=1e-12)
    assert item["score"]["count"] == len(expected["scores"])
    assert item["score"]["mean"] == pytest.approx(mean(expected["scores"]), rel=1e-12)
    signals = item["signals"]
    assert (signals["positive"], signals["negative"]) == (
        expected["positive"],
        expected["negative"],
    )
    total = expected["positive"] + expected["negative"]
    assert signals["positive_rate"] == pytest.approx(expected["positive"] / total)
    assert (item["usage_links"], item["linked_traces"]) == (expected["links"], expected["traces"])


async def test_per_version_figures_and_comparison_with_the_stable_version(
    client: Client, world: World
) -> None:
    body = await compare_answer(client, "/dashboard/prompts/checkout/compare")
    assert body["name"] == "checkout" and body["prompt_id"] == str(world.entry.id)
    assert [item["version"] for item in body["versions"]] == [3, 2, 1]
    assert body["baseline"] == 1  # 90% of the deployment in force
    by_number = {item["version"]: item for item in body["versions"]}
    for number in (1, 2):
        _check_version(by_number[number], world.expected(number))
    assert by_number[3]["events"] == 0 and by_number[3]["latency_ms"]["p50"] is None
    assert by_number[3]["linked_traces"] == 6 and by_number[3]["vs_baseline"]["score"] is None
    assert by_number[1]["is_baseline"] and by_number[1]["vs_baseline"] is None
    assert body["unattributed_signals"] == {"positive": 1, "negative": 1}

    version, baseline = world.expected(2), world.expected(1)
    versus = by_number[2]["vs_baseline"]
    for metric, key in (("latency_ms", "latencies"), ("cost_usd", "costs"), ("score", "scores")):
        reference = scipy_stats.ttest_ind(version[key], baseline[key], equal_var=False)
        low, high = reference.confidence_interval(0.95)
        assert versus[metric]["p_value"] == pytest.approx(reference.pvalue, rel=1e-6)
        assert versus[metric]["ci95"] == pytest.approx([low, high], rel=1e-6)
        assert versus[metric]["test"] == "welch_t"
    assert versus["latency_ms"]["verdict"] == "worse"  # v2 is slower by construction
    rate = versus["positive_rate"]
    n2, n1 = version["positive"] + version["negative"], baseline["positive"] + baseline["negative"]
    assert rate["difference"] == pytest.approx(version["positive"] / n2 - baseline["positive"] / n1)
    assert rate["test"] == "two_proportion_z" and 0 <= rate["p_value"] <= 1


async def test_a_window_with_ragged_edges_is_exact_and_buckets_add_up(
    client: Client, world: World
) -> None:
    start, end = START + timedelta(minutes=75), START + timedelta(hours=3, minutes=20)
    body = await compare_answer(
        client,
        "/dashboard/prompts/checkout/compare",
        **{"from": start.isoformat(), "to": end.isoformat(), "bucket": "hour", "baseline": "v2"},
    )
    assert body["baseline"] == 2 and body["bucket"] == "hour"
    assert body["from"] == "2026-01-10T10:15:00.000Z" and body["to"] == "2026-01-10T12:20:00.000Z"
    by_number = {item["version"]: item for item in body["versions"]}
    for number in (1, 2):
        item, expected = by_number[number], world.expected(number, start, end)
        _check_version(item, expected)
        series = item["series"]
        assert [point["start"] for point in series] == [
            f"2026-01-10T{hour}:00:00.000Z" for hour in (10, 11, 12)
        ][: len(series)]
        assert sum(point["events"] for point in series) == item["events"]
        assert sum(point["signals"]["total"] for point in series) == item["signals"]["total"]
    # One read gives the buckets and the whole window (grouping sets): the whole window's
    # figures are those of the same request without a bucket, to the last sketch digit.
    plain = await compare_answer(
        client,
        "/dashboard/prompts/checkout/compare",
        **{"from": start.isoformat(), "to": end.isoformat(), "baseline": "v2"},
    )
    assert plain["unattributed_signals"] == body["unattributed_signals"]
    for with_series, without in zip(body["versions"], plain["versions"], strict=True):
        assert {k: v for k, v in with_series.items() if k != "series"} == without
    day = await compare_answer(
        client, f"/v1/prompts/{encode(IdShape.PROMPT, world.entry.id)}/compare", bucket="day"
    )
    for item in day["versions"]:
        assert [point["start"] for point in item["series"]] in (
            [],
            ["2026-01-10T00:00:00.000Z"],
        )
        if item["series"]:
            assert item["series"][0]["events"] == item["events"]


ROUTES = ("/dashboard/prompts/{}/compare", "/v1/prompts/{}/compare", "/api/v1/prompts/{}/compare")


def _references(entry: PromptEntry) -> list[str]:
    """The prompt in every shape a route takes: seed 001's, 000's, 003's ids, UUID, name."""
    return [
        encode(IdShape.PROMPT, entry.id),
        encode(IdShape.SIGNAL_PROMPT, entry.id),
        encode(IdShape.TEMPLATE, entry.id),
        str(entry.id),
        entry.name,
    ]


async def test_every_route_takes_the_prompt_in_every_shape(client: Client, world: World) -> None:
    by_name = await compare_answer(client, "/dashboard/prompts/checkout/compare")
    for route in ROUTES:
        for reference in _references(world.entry):
            answer = await compare_answer(client, route.format(reference))
            assert answer == by_name, (route, reference)
    digest = world.entry.versions_by_number[2].content_hash
    by_hash = await compare_answer(client, "/dashboard/prompts/checkout/compare", baseline=digest)
    assert by_hash["baseline"] == 2


@pytest.mark.parametrize(
    ("path", "params", "headers", "status", "field"),
    [
        ("/dashboard/prompts/checkout/compare", {}, {}, 401, None),
        ("/dashboard/prompts/checkout/compare", {}, auth(INGEST_KEY), 403, None),
        ("/dashboard/prompts/checkout/compare", {}, auth(OTHER_KEY), 404, "name"),
        ("/dashboard/prompts/elsewhere/compare", {}, auth(), 404, "name"),
        ("/dashboard/prompts/nothing/compare", {}, auth(), 404, "name"),
        ("/v1/prompts/nothing/compare", {}, auth(), 404, "prompt_id"),
        ("/dashboard/prompts/checkout/compare", {"baseline": "v9"}, auth(), 404, "baseline"),
        ("/dashboard/prompts/checkout/compare", {"from": "yesterday"}, auth(), 400, "from"),
        (
            "/dashboard/prompts/checkout/compare",
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            auth(),
            400,
            "from",
        ),
        ("/dashboard/prompts/checkout/compare", {"bucket": "week"}, auth(), 400, "bucket"),
    ],
)
async def test_errors(
    client: Client,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    response = await client.get(path, params=params, headers=headers)
    assert response.status == status
    error = (await response.json())["error"]
    assert error.get("field") == field


async def test_compare_counts_against_the_plans_read_limit(client: Client, world: World) -> None:
    path = "/dashboard/prompts/checkout/compare"
    for _ in range(30):  # the free plan's reads: 30 a minute
        response = await client.get(path, headers=auth(FREE_KEY))
        assert response.status == 200, await response.text()
    response = await client.get(path, headers=auth(FREE_KEY))
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "rate_limited"
    # Each route counts in its own bucket, and each key has its own counters.
    other_route = f"/v1/prompts/{world.entry.id}/compare"
    assert (await client.get(other_route, headers=auth(FREE_KEY))).status == 200
    assert (await client.get(path, headers=auth())).status == 200


async def test_an_organisation_override_limits_compare(client: Client, world: World) -> None:
    path = f"/api/v1/prompts/{world.entry.id}/compare"
    assert (await client.get(path, headers=auth(LIMITED_KEY))).status == 200
    response = await client.get(path, headers=auth(LIMITED_KEY))
    assert response.status == 429 and "Retry-After" in response.headers


async def test_other_projects_prompt_is_not_found_in_any_shape(
    client: Client, world: World
) -> None:
    for route in ROUTES:
        field = "name" if route.startswith("/dashboard") else "prompt_id"
        for reference in _references(world.other):
            response = await client.get(route.format(reference), headers=auth())
            assert response.status == 404, (route, reference)
            error = (await response.json())["error"]
            assert (error["code"], error["field"]) == ("not_found", field)


async def test_unreachable_warehouse_is_503_with_retry_after(settings: Settings) -> None:
    tenant = Tenant()
    entry: PromptEntry = prompt_entry(tenant.project_id, "p", 1)
    down = settings.model_copy(update={"clickhouse_url": f"http://127.0.0.1:{free_port()}"})
    app = compare_app(down, catalog_with(tenant.project_id, [entry]))
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/dashboard/prompts/p/compare", headers=auth())
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
