"""The dashboard's pages over HTTP: what they show is what was stored, escaped, per project.

The browser tests (``test_browser.py``) drive the same pages in Chromium; these check the
figures and the markup quickly, without a browser.
"""

from __future__ import annotations

import random
import re
import statistics
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.rollouts.lifecycle import running_rollout
from controlplane.store.models import Prompt
from promptline.commands.admin import transaction
from promptline.server import create_app
from promptline.settings import Settings
from schemas.records import RecordBase
from tests.compare.support import store
from tests.ui.support import Client, Seeded, api, csrf_of, make_project, sign_in
from tests.workers.helpers import Tenant, analytics, signal

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
async def seeded(migrated: Settings) -> Seeded:
    return await make_project(migrated)


@pytest.fixture
async def client(migrated: Settings, seeded: Seeded) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(migrated))) as client:
        await sign_in(client, seeded.deploy_key)
        yield client


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    assert float(response.headers["Server-Timing"].split("dur=")[1]) >= 0
    return text


async def two_versions(client: Client, key: str, name: str, first: str, second: str) -> Any:
    created = await api(client, key, "POST", "/v1/prompts", {"name": name})
    await api(client, key, "POST", f"/v1/prompts/{name}/versions", {"content": first})
    await api(client, key, "POST", f"/v1/prompts/{name}/versions", {"content": second})
    return created


async def test_what_a_user_wrote_is_shown_as_text(client: Client, seeded: Seeded) -> None:
    name = "evil<b>name<\\b>"
    created = await api(
        client, seeded.deploy_key, "POST", "/v1/prompts", {"name": name, "description": HOSTILE}
    )
    for content, message in (
        (HOSTILE + "\nline two", "<img src=x onerror=alert(2)>"),
        (HOSTILE + "\nline 2 <i>", "ok"),
    ):
        await api(
            client,
            seeded.deploy_key,
            "POST",
            f"/v1/prompts/{created['id']}/versions",
            {"content": content, "message": message},
        )
    await api(
        client,
        seeded.deploy_key,
        "POST",
        f"/v1/prompts/{created['id']}/deploy",
        {"traffic": [{"version": "v2", "weight": 100}], "label": "<u>label</u>"},
    )
    for path in (
        "/ui/prompts",
        f"/ui/prompts/{created['id']}",
        f"/ui/prompts/{created['id']}/diff?a=1&b=2",
        f"/ui/prompts/{created['id']}/compare",
    ):
        text = await page(client, path)
        assert "<script>" not in text, path
        assert "<b>name" not in text and "<img" not in text and "<u>label" not in text, path
    text = await page(client, f"/ui/prompts/{created['id']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "&lt;u&gt;label&lt;/u&gt;" in text


async def test_the_diff_shows_lines_added_and_removed(client: Client, seeded: Seeded) -> None:
    created = await two_versions(
        client, seeded.deploy_key, "d", "Be brief.\nSay hello.\nEnd.", "Be brief.\nSay hi.\nEnd."
    )
    text = await page(client, f"/ui/prompts/{created['id']}/diff?a=v1&b=2")
    removed = re.findall(r'<tr class="removed">.*?<pre>(.*?)</pre>', text, re.S)
    added = re.findall(r'<tr class="added">.*?<pre>(.*?)</pre>', text, re.S)
    assert removed == ["Say hello."]
    assert added == ["Say hi."]
    assert "1 line(s) added" in text
    await page(client, f"/ui/prompts/{created['id']}/diff?a=9", status=404)


async def test_the_prompt_page_shows_versions_timeline_and_split(
    client: Client, seeded: Seeded
) -> None:
    created = await two_versions(client, seeded.deploy_key, "t", "A", "B")
    prompt = f"/v1/prompts/{created['id']}"
    await api(
        client,
        seeded.deploy_key,
        "POST",
        f"{prompt}/deploy",
        {"traffic": [{"version": "v1", "weight": 100}], "label": "first"},
    )
    await api(
        client,
        seeded.deploy_key,
        "POST",
        f"{prompt}/deploy",
        {"traffic": [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]},
    )
    await api(client, seeded.deploy_key, "POST", f"{prompt}/rollback")
    text = await page(client, f"/ui/prompts/{created['id']}")
    assert re.findall(r'<tr data-version="(\d+)">', text) == ["2", "1"]
    kinds = re.findall(r'<li data-kind="(\w+)">', text)
    assert kinds == ["rollback", "deploy", "deploy"]
    split = re.findall(r'<li data-version="(\d+)" data-weight="(\d+)">', text)
    assert split == [("1", "100")]
    listing = await page(client, "/ui/prompts?q=T")
    assert 'data-prompt="t"' in listing
    assert 'data-prompt="t"' not in await page(client, "/ui/prompts?q=zzz")


async def test_a_deploy_from_the_page_asks_first_and_then_resolve_follows(
    client: Client, seeded: Seeded
) -> None:
    created = await two_versions(client, seeded.deploy_key, "canary", "A", "B")
    path = f"/ui/prompts/{created['id']}"
    token = csrf_of(await page(client, path))
    form = {"csrf_token": token, "weight_1": "90", "weight_2": "10", "label": "canary"}
    asked = await client.post(f"{path}/deploy", data=form)
    text = await asked.text()
    assert asked.status == 200
    assert 'id="confirm"' in text
    assert "v1 90%" in text and "v2 10%" in text
    history = await api(
        client, seeded.deploy_key, "GET", f"/v1/prompts/{created['id']}/deployments"
    )
    assert history["total"] == 0  # asking wrote nothing
    bad = await client.post(f"{path}/deploy", data=form | {"weight_2": "20"})
    assert "sum to 100" in await bad.text()
    assert 'id="confirm"' not in await bad.text()
    done = await client.post(
        f"{path}/deploy", data=form | {"confirm": "yes"}, allow_redirects=False
    )
    assert done.status == 303
    assert done.headers["Location"] == f"{path}?done=deployed"
    served = [
        (
            await api(
                client,
                seeded.deploy_key,
                "POST",
                "/v1/resolve",
                {"prompt": "canary", "user_id": f"u{n}"},
            )
        )["version"]
        for n in range(600)
    ]
    assert 0.85 < served.count("v1") / len(served) < 0.95
    rolled = await client.post(f"{path}/rollback", data={"csrf_token": token})
    assert "There is no earlier deployment" in await rolled.text()


async def test_compare_shows_the_figures_that_were_stored(
    migrated: Settings, client: Client, seeded: Seeded
) -> None:
    created = await two_versions(client, seeded.deploy_key, "cmp", "A", "B")
    versions = await api(client, seeded.deploy_key, "GET", f"/v1/prompts/{created['id']}/versions")
    hashes = {int(v["version"][1:]): v["content_hash"] for v in versions["versions"]}
    prompt_id = uuid.UUID(created["prompt_uuid"])
    tenant = Tenant(org_id=seeded.org_id, project_id=seeded.project_id)
    now = datetime.now(UTC)
    hours = [now.replace(minute=5, second=0, microsecond=0) - timedelta(hours=h) for h in (1, 3)]
    rng = random.Random(17)
    records: list[RecordBase] = []
    sent: dict[int, dict[datetime, int]] = {1: {}, 2: {}}
    latencies: dict[int, list[float]] = {1: [], 2: []}
    for number, per_hour in ((1, (30, 20)), (2, (12, 8))):
        for hour, count in zip(hours, per_hour, strict=True):
            sent[number][hour.replace(minute=0)] = count
            for _ in range(count):
                latency = rng.lognormvariate(5 + number / 10, 0.3)
                latencies[number].append(latency)
                records.append(
                    analytics(tenant, prompt_id, hashes[number], latency=latency, at=hour)
                )
    records += [signal(tenant, prompt_id, "positive", metadata={"version": "v2"}, at=hours[0])] * 3
    records.append(signal(tenant, prompt_id, "negative", metadata={"version": "v2"}, at=hours[0]))
    await store(migrated, records)
    text = await page(client, f"/ui/prompts/{created['id']}/compare?window=day&baseline=1")
    for number in (1, 2):
        row = re.search(rf'<tr data-version="{number}"[^>]*>(.*?)</tr>', text, re.S)
        assert row is not None
        events = re.search(r'data-metric="events">([^<]*)<', row.group(1))
        assert events is not None and events.group(1) == str(sum(sent[number].values()))
        p50 = re.search(r'data-metric="latency_p50">([^<]*)<', row.group(1))
        assert p50 is not None
        median = statistics.median(latencies[number])
        assert abs(float(p50.group(1).replace(",", "")) - median) <= 0.03 * median
    assert re.search(r'<tr data-version="2"[^>]*>.*?data-metric="positive_rate">75.0%', text, re.S)
    svg = re.search(r'<svg[^>]*data-metric="events".*?</svg>', text, re.S)
    assert svg is not None
    chart = ElementTree.fromstring(svg.group(0))
    for number in (1, 2):
        group = chart.find(f".//{SVG}g[@data-version='{number}']")
        assert group is not None
        points = {
            datetime.fromisoformat(circle.attrib["data-at"]): float(circle.attrib["data-value"])
            for circle in group.iter(f"{SVG}circle")
            if "data-at" in circle.attrib
        }
        assert points == {hour: float(count) for hour, count in sent[number].items()}
    assert "A guarded rollout is running" not in text
    assert re.search(r"\(p (=|<) 0\.\d+\)", text)  # compare's own p-values, no guard running
    assert 'class="chart interval-chart"' in text


async def test_compare_says_what_to_do_when_there_is_nothing(
    client: Client, seeded: Seeded
) -> None:
    created = await two_versions(client, seeded.deploy_key, "quiet", "A", "B")
    text = await page(client, f"/ui/prompts/{created['id']}/compare?window=week")
    assert 'id="empty-state"' in text
    assert "/api/v1/prompts/analytics" in text
    await page(client, f"/ui/prompts/{created['id']}/compare?window=year", status=400)
    await page(
        client,
        f"/ui/prompts/{created['id']}/compare?window=custom&from=2026-02-02T00:00"
        "&to=2026-02-01T00:00",
        status=400,
    )
    await page(client, f"/ui/prompts/{created['id']}/compare?baseline=v7", status=404)
    widened = await page(
        client,
        f"/ui/prompts/{created['id']}/compare?window=custom&from=2026-02-01T10:20"
        "&to=2026-02-01T12:05",
    )
    assert 'name="from" step="3600" value="2026-02-01T10:00"' in widened
    assert 'name="to" step="3600" value="2026-02-01T13:00"' in widened


async def test_a_guarded_rollout_shows_on_its_page_and_compare_says_whose_intervals(
    migrated: Settings, client: Client, seeded: Seeded
) -> None:
    created = await two_versions(client, seeded.deploy_key, "guarded", "A", "B")
    prompt = f"/v1/prompts/{created['id']}"
    await api(
        client,
        seeded.deploy_key,
        "POST",
        f"{prompt}/deploy",
        {"traffic": [{"version": "v1", "weight": 100}]},
    )
    none_yet = await page(client, f"/ui/prompts/{created['id']}/rollout")
    assert 'id="no-rollout"' in none_yet
    await api(
        client,
        seeded.deploy_key,
        "POST",
        f"{prompt}/deploy",
        {"guard": {"candidate": "v2", "guardrails": [{"metric": "latency_ms", "margin": 0.1}]}},
    )
    async with transaction(migrated) as session:
        row = await session.get(Prompt, uuid.UUID(created["prompt_uuid"]))
        assert row is not None
        rollout = await running_rollout(session, row.id)
        assert rollout is not None
        rollout.report = {
            "evaluated_at": "2026-12-07T03:00:00Z",
            "guardrails": [
                {
                    "metric": "latency_ms",
                    "direction": "lower_is_better",
                    "margin": 0.1,
                    "relative": True,
                    "limit": 0.1,
                    "verdict": "no_regression_yet",
                    "estimate": 0.0325,
                    "interval": {"lower": -0.0125, "upper": None},
                    "alpha": 0.049,
                    "candidate": {"count": 120, "mean": 430.0},
                    "baseline": {"count": 900, "mean": 415.0},
                }
            ],
            "sample_ratio": {
                "test": "sequential",
                "versions": ["v1", "v2"],
                "units": [95, 5],
                "weights": [95, 5],
                "p_value": 0.8,
                "threshold": 0.001,
                "mismatch": False,
            },
            "decision": {"reason": "waiting for 1,000 units in each arm"},
        }
    text = await page(client, f"/ui/prompts/{created['id']}/rollout")
    assert 'data-status="running"' in text
    assert "waiting for 1,000 units in each arm" in text
    assert '<tr data-metric="latency_ms" data-verdict="no_regression_yet">' in text
    assert "[-1.25%, +∞)" in text  # a relative guardrail reads in percent, as the guard says
    assert "+3.25%" in text and "+10.00%" in text
    assert 'id="stop-form"' in text
    versions = await api(client, seeded.deploy_key, "GET", f"{prompt}/versions")
    tenant = Tenant(org_id=seeded.org_id, project_id=seeded.project_id)
    await store(
        migrated,
        [
            analytics(tenant, row.id, version["content_hash"], latency=400.0)
            for version in versions["versions"]
            for _ in range(3)
        ],
    )
    compare = await page(client, f"/ui/prompts/{created['id']}/compare?window=day")
    assert 'id="guarded"' in compare
    assert 'data-guardrail="latency_ms"' in compare
    assert "(p " not in compare  # no fixed-horizon p-value while the guard runs
    token = csrf_of(text)
    stop = f"/ui/prompts/{created['id']}/rollout/stop"
    asked = await client.post(stop, data={"csrf_token": token})
    assert 'id="confirm"' in await asked.text()
    done = await client.post(stop, data={"csrf_token": token, "confirm": "yes"})
    stopped = await done.text()
    assert 'data-status="stopped"' in stopped
    assert 'id="stop-form"' not in stopped
