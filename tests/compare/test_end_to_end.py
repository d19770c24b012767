"""Edge -> real Kafka -> worker process (SIGKILLed mid-stream, restarted) -> ClickHouse -> compare.

Events go through the HTTP edge (retries with the same Idempotency-Key, usage links sent
twice) and straight to Kafka (the same record bytes twice, as a producer retry sends them).
Compare must then answer exactly what was sent, stored once: counts, sums, rates, and
percentiles within the sketch's relative accuracy.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from scipy import stats as scipy_stats

from ingest.context import EDGE_CONTEXT
from promptline.commands.admin import quickstart
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.compare.support import quantile_bounds
from tests.workers.helpers import (
    Tenant,
    analytics,
    committed_offsets,
    fleet,
    produce,
    scalar,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

Client = TestClient[web.Request, web.Application]


@dataclass
class Sent:
    """What one version was sent, once per event."""

    latencies: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    positive: int = 0
    negative: int = 0
    traces: set[uuid.UUID] = field(default_factory=set)
    links: int = 0


async def _accepted(response: Awaitable[ClientResponse]) -> None:
    answered = await response
    assert answered.status in (201, 204), await answered.text()


async def _in_chunks(calls: list[Awaitable[ClientResponse]], size: int = 50) -> None:
    for start in range(0, len(calls), size):
        await asyncio.gather(*(_accepted(call) for call in calls[start : start + size]))


async def test_compare_answers_exactly_what_was_sent_through_a_killed_worker(
    migrated: Settings, tmp_path: Path
) -> None:
    settings = migrated.model_copy(
        update={"worker_batch_max_rows": 20, "worker_batch_max_seconds": 0.1}
    )
    demo = await quickstart(settings)
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    prompt_id, name = demo["prompt_id"], demo["prompt_name"]
    rng = random.Random(5)
    sent = {1: Sent(), 2: Sent()}
    produced = {kind: 0 for kind in EventKind}

    async with (
        fleet(settings, tmp_path) as workers,
        TestClient(TestServer(create_app(settings))) as client,
    ):
        created = await client.post(
            f"/v1/prompts/{prompt_id}/versions",
            json={"content": "You are a terse checkout assistant for {{store_name}}."},
            headers=headers,
        )
        assert created.status == 201, await created.text()
        deployed = await client.post(
            f"/v1/prompts/{prompt_id}/deploy",
            json={"traffic": [{"version": "v1", "weight": 70}, {"version": "v2", "weight": 30}]},
            headers=headers,
        )
        assert deployed.status == 201, await deployed.text()
        catalog = client.app[EDGE_CONTEXT].catalog
        entry = catalog.current.prompt(uuid.UUID(demo["project_id"]), uuid.UUID(prompt_id))
        assert entry is not None
        hashes = {n: v.content_hash for n, v in entry.versions_by_number.items()}

        first = await workers.start()

        calls: list[Awaitable[ClientResponse]] = []
        retries: list[Awaitable[ClientResponse]] = []
        for n in range(400):
            number = 1 if n % 5 < 3 else 2
            body: dict[str, Any] = {
                "prompt_id": prompt_id,
                "version_hash": hashes[number],
                "latency_ms": float(rng.randint(80, 300) + 60 * number),
            }
            if n % 4:
                body["cost_usd"] = rng.randint(1, 40) / 1024
                sent[number].costs.append(body["cost_usd"])
            if n % 3:
                body["score"] = rng.randint(0, 8 + number) / 8
                sent[number].scores.append(body["score"])
            sent[number].latencies.append(body["latency_ms"])
            request_headers = dict(headers)
            if n % 7 == 0:
                request_headers["Idempotency-Key"] = f"analytics-{n}"
                retries.append(
                    client.post("/api/v1/prompts/analytics", json=body, headers=request_headers)
                )
            calls.append(
                client.post("/api/v1/prompts/analytics", json=body, headers=request_headers)
            )
        produced[EventKind.ANALYTICS] += len(calls) + len(retries)
        for n in range(240):
            number = 1 if n % 2 else 2
            positive = rng.random() < (0.55 if number == 1 else 0.75)
            sent[number].positive += positive
            sent[number].negative += not positive
            signal_headers = dict(headers, **{"Idempotency-Key": f"signal-{n}"})
            signal_body = {
                "value": "positive" if positive else "negative",
                "metadata": {"version": number, "session": f"s{n}"},
            }
            path = f"/api/v1/prompts/{prompt_id}/signals"
            calls.append(client.post(path, json=signal_body, headers=signal_headers))
            if n % 6 == 0:
                retries.append(client.post(path, json=signal_body, headers=signal_headers))
        produced[EventKind.SIGNAL] += 240 + 40
        for n in range(90):
            number = 1 if n % 3 else 2
            trace = uuid.uuid4() if n % 2 else next(iter(sent[number].traces), uuid.uuid4())
            sent[number].traces.add(trace)
            sent[number].links += 1
            span = str(uuid.UUID(int=n + 1))
            link = {"name": name, "version": number, "trace_id": str(trace), "span_id": span}
            calls.append(client.post("/dashboard/prompts/usage", json=link, headers=headers))
            if n % 5 == 0:
                retries.append(client.post("/dashboard/prompts/usage", json=link, headers=headers))
        produced[EventKind.USAGE] += 90 + 18
        order = list(range(len(calls)))
        rng.shuffle(order)
        await _in_chunks([calls[i] for i in order[: len(order) // 2]])

        # Part of the way in: the worker dies without flushing, committing or leaving.
        await wait_until(lambda: _stored(settings, 100), "some stored", within=60)
        await first.kill()
        await _in_chunks([calls[i] for i in order[len(order) // 2 :]])
        await _in_chunks(retries)
        # Records that reach Kafka twice, byte for byte (a producer retry).
        tenant = Tenant(uuid.UUID(demo["org_id"]), uuid.UUID(demo["project_id"]))
        twice = [
            analytics(tenant, uuid.UUID(prompt_id), hashes[2], latency=float(400 + n), cost=0.5)
            for n in range(30)
        ]
        await produce(settings, twice + twice)
        produced[EventKind.ANALYTICS] += 60
        sent[2].latencies += [400.0 + n for n in range(30)]
        sent[2].costs += [0.5] * 30

        await workers.start()  # the second, which finishes the job
        await wait_until(lambda: _all_committed(settings, produced), "all stored", within=120)

        response = await client.get(f"/dashboard/prompts/{name}/compare", headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        same = await client.get(f"/v1/prompts/{prompt_id}/compare", headers=headers)
        assert await same.json() == body

    assert body["baseline"] == 1  # 70% of the deployment in force
    versions = {item["version"]: item for item in body["versions"]}
    for number in (1, 2):
        _check(versions[number], sent[number])
    versus = versions[2]["vs_baseline"]
    for metric, attribute in (("latency_ms", "latencies"), ("cost_usd", "costs")):
        reference = scipy_stats.ttest_ind(
            getattr(sent[2], attribute), getattr(sent[1], attribute), equal_var=False
        )
        assert versus[metric]["p_value"] == pytest.approx(reference.pvalue, rel=1e-6, abs=1e-300)
    assert versus["latency_ms"]["verdict"] == "worse"


def _check(item: dict[str, Any], sent: Sent) -> None:
    assert item["events"] == len(sent.latencies)
    latency = item["latency_ms"]
    assert latency["count"] == len(sent.latencies)
    assert latency["mean"] == sum(sent.latencies) / len(sent.latencies)
    for level_name, level in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        low, high = quantile_bounds(sent.latencies, level)
        assert low <= latency[level_name] <= high
    assert item["cost_usd"]["count"] == len(sent.costs)
    assert item["cost_usd"]["total"] == sum(sent.costs)
    assert item["score"]["count"] == len(sent.scores)
    assert item["score"]["mean"] == sum(sent.scores) / len(sent.scores)
    signals = item["signals"]
    assert (signals["positive"], signals["negative"]) == (sent.positive, sent.negative)
    assert signals["positive_rate"] == sent.positive / (sent.positive + sent.negative)
    assert (item["usage_links"], item["linked_traces"]) == (sent.links, len(sent.traces))


async def _stored(settings: Settings, rows: int) -> bool:
    count = await scalar(settings, "SELECT count() FROM analytics_events")
    return int(count) >= rows


async def _all_committed(settings: Settings, produced: dict[EventKind, int]) -> bool:
    committed = await committed_offsets(settings, list(EventKind))
    return all(
        committed.get(topic_name(settings.kafka_topic_prefix, kind), 0) >= count
        for kind, count in produced.items()
    )
