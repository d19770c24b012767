"""Exposure figures against the real ClickHouse: per version in compare, and the guard's read.

Exposures are stored as a worker stores them (the hourly view sees them), over whole hours
and ragged edges, with units seen in several hours, by the split and by rules, under two
deployments; every count is checked against the records, exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from compare.exposures import UnitCounts, exposure_units
from compare.warehouse import Warehouse
from compare.window import floor_hour
from controlplane.ids import IdShape, encode
from promptline.settings import Settings
from schemas.records import ExposureRecord
from sql.runner import migrate
from tests.compare import support
from tests.workers.helpers import Tenant, exposure

pytestmark = [pytest.mark.clickhouse]

Client = TestClient[web.Request, web.Application]


class World:
    """A prompt with three versions and its exposures over the last five hours."""

    def __init__(self) -> None:
        self.tenant = Tenant()
        split = [(1, 50), (2, 50)]
        self.entry = support.prompt_entry(self.tenant.project_id, "exposed", 3, split=split)
        self.start = floor_hour(datetime.now(UTC)) - timedelta(hours=5)
        self.canary, self.older = uuid.uuid4(), uuid.uuid4()
        self.records: list[ExposureRecord] = []
        for minute in range(0, 5 * 60, 7):
            at = self.start + timedelta(minutes=minute)
            n = minute // 7
            number = 1 + n % 2
            unit = f"u{n % 23}"  # each unit comes back in other hours
            self.add(number, unit, at, self.canary, by_split=True)
            if n % 5 == 0:  # a targeting rule, in the same deployment
                self.add(3, unit, at, self.canary, by_split=False, rule="beta-testers")
            if n % 4 == 0:  # the deployment before
                self.add(1, f"old-{n % 6}", at, self.older, by_split=True)
        self.add(1, "never", self.start, None, by_split=False, rule="latest")
        self.add(9, "deleted-version", self.start, self.canary, by_split=True)

    def add(
        self,
        number: int,
        unit: str,
        at: datetime,
        deployment: uuid.UUID | None,
        *,
        by_split: bool,
        rule: str = "canary",
    ) -> None:
        version = self.entry.versions_by_number.get(number)
        self.records.append(
            exposure(
                self.tenant,
                self.entry.id,
                number,
                unit,
                version_hash=version.content_hash if version else "sha256:" + "9" * 64,
                deployment_id=deployment,
                by_split=by_split,
                rule=rule,
                at=at,
            )
        )

    def expected(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        deployments: Sequence[uuid.UUID] | None = None,
        by_split: bool | None = None,
    ) -> dict[int, UnitCounts]:
        chosen: dict[int, list[ExposureRecord]] = {}
        for record in self.records:
            if start is not None and record.received_at < start:
                continue
            if end is not None and record.received_at >= end:
                continue
            if deployments is not None and record.deployment_id not in deployments:
                continue
            if by_split is not None and record.by_split != by_split:
                continue
            chosen.setdefault(record.version, []).append(record)
        return {
            number: UnitCounts(len(records), len({r.unit_id for r in records}))
            for number, records in chosen.items()
        }


@pytest.fixture
async def migrated_clickhouse(settings: Settings) -> Settings:
    await migrate(settings)
    return settings


@pytest.fixture
async def world(migrated_clickhouse: Settings) -> World:
    world = World()
    await support.store(migrated_clickhouse, world.records)
    # Another project's exposures of the same prompt id are never counted.
    stranger = Tenant()
    await support.store(
        migrated_clickhouse,
        [exposure(stranger, world.entry.id, 1, "u1", at=world.start + timedelta(hours=2))],
    )
    return world


@pytest.fixture
async def warehouse(migrated_clickhouse: Settings) -> AsyncIterator[Warehouse]:
    pool = Warehouse(migrated_clickhouse)
    try:
        yield pool
    finally:
        await pool.close()


async def test_exposure_units_since_a_moment_are_exact(world: World, warehouse: Warehouse) -> None:
    entry = world.entry
    since = world.start + timedelta(minutes=83)  # a ragged first hour, then whole hours
    got = await exposure_units(warehouse.rows, entry.project_id, entry.id, since)
    assert got == world.expected(since) and got[1].units < got[1].exposures
    everything = await exposure_units(warehouse.rows, entry.project_id, entry.id, world.start)
    assert everything == world.expected(world.start) and set(everything) == {1, 2, 3, 9}
    split = await exposure_units(
        warehouse.rows,
        entry.project_id,
        entry.id,
        since,
        deployment_ids=[world.canary],
        by_split=True,
    )
    assert split == world.expected(since, deployments=[world.canary], by_split=True)
    assert 3 not in split and split[1].units and split[2].units
    ruled = await exposure_units(warehouse.rows, entry.project_id, entry.id, since, by_split=False)
    assert ruled == world.expected(since, by_split=False) and set(ruled) == {3}
    both = await exposure_units(
        warehouse.rows,
        entry.project_id,
        entry.id,
        world.start,
        deployment_ids=[world.canary, world.older],
    )
    assert both == world.expected(world.start, deployments=[world.canary, world.older])
    assert both[1].exposures < everything[1].exposures  # the never-deployed one is left out
    none = await exposure_units(
        warehouse.rows, entry.project_id, entry.id, since, deployment_ids=[]
    )
    assert none == {}
    later = await exposure_units(
        warehouse.rows, entry.project_id, entry.id, datetime.now(UTC) + timedelta(hours=1)
    )
    assert later == {}


@pytest.fixture
async def client(migrated_clickhouse: Settings, world: World) -> AsyncIterator[Client]:
    catalog = support.catalog_with(world.tenant.project_id, [world.entry])
    app = support.compare_app(migrated_clickhouse, catalog)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_compare_answers_exposures_and_exact_units_per_version(
    client: Client, world: World
) -> None:
    path = f"/v1/prompts/{encode(IdShape.PROMPT, world.entry.id)}/compare"
    whole = await support.compare_answer(client, path)
    start = world.start + timedelta(minutes=40)
    end = world.start + timedelta(hours=3, minutes=25)
    window = await support.compare_answer(client, path, **{"from": _iso(start), "to": _iso(end)})
    bucketed = await support.compare_answer(
        client, path, **{"from": _iso(start), "to": _iso(end), "bucket": "hour"}
    )
    for body, expected in ((whole, world.expected()), (window, world.expected(start, end))):
        for item in body["versions"]:
            counted = expected.get(item["version"], UnitCounts(0, 0))
            assert (item["exposures"], item["exposed_units"]) == (
                counted.exposures,
                counted.units,
            ), item["version"]
    assert {item["version"] for item in whole["versions"]} == {1, 2, 3}  # v9 is unknown
    for item in bucketed["versions"]:
        for point in item["series"]:
            hour = datetime.fromisoformat(point["start"].replace("Z", "+00:00"))
            first, last = max(hour, start), min(hour + timedelta(hours=1), end)
            counted = world.expected(first, last).get(item["version"], UnitCounts(0, 0))
            assert (point["exposures"], point["exposed_units"]) == (
                counted.exposures,
                counted.units,
            )
        total = sum(point["exposures"] for point in item["series"])
        assert total == world.expected(start, end).get(item["version"], UnitCounts(0, 0)).exposures
