"""Every resolve answer becomes one exposure record in Kafka, and resolve never waits for it.

Against a real broker: the records carry what the answers said, a unit id that is the
project's keyed hash of the user (never the user id itself, unless configured), and the
split-or-rule flag the sample-ratio check counts. Without a broker, resolve answers all the
same and the exposures it could not send are counted by reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from controlplane.store.models import Project
from ingest.metrics import EDGE_METRICS
from promptline.commands.admin import quickstart
from promptline.devstack.services import free_port
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind
from promptline.units import unit_id
from schemas.records import ExposureRecord
from tests.ingest.kafka_reader import read_topic

Client = TestClient[web.Request, web.Application]
USERS = 40


async def _unit_key(settings: Settings, project_id: str) -> bytes:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            key = await session.scalar(
                select(Project.unit_key).where(Project.id == uuid.UUID(project_id))
            )
    finally:
        await engine.dispose()
    assert key is not None
    return bytes.fromhex(key)


async def _resolve_all(client: Client, demo: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {demo['api_key']}"}
    deploy = await client.post(
        f"/v1/prompts/{demo['prompt_id']}/deploy",
        json={"traffic": [{"version": "v1", "weight": 100}], "label": "all-in"},
        headers=headers,
    )
    assert deploy.status == 201, await deploy.text()
    answers = []
    for index in range(USERS):
        context = {"tier": "gold"} if index % 2 else {}
        response = await client.post(
            "/v1/resolve",
            json={"prompt": demo["prompt_name"], "user_id": f"user-{index}", "context": context},
            headers=headers,
        )
        assert response.status == 200
        answers.append(await response.json())
    return answers


@pytest.mark.kafka
async def test_each_resolve_answer_is_one_exposure_record(migrated: Settings) -> None:
    demo = await quickstart(migrated)
    async with TestClient(TestServer(create_app(migrated))) as client:
        answers = await _resolve_all(client, demo)
        records = await read_topic(migrated, EventKind.EXPOSURE, USERS)
    key = await _unit_key(migrated, demo["project_id"])
    assert len(records) == USERS
    by_unit = {record["unit_id"]: record for record in records}
    for index, answer in enumerate(answers):
        record = by_unit[unit_id(key, f"user-{index}")]
        assert record.pop("_key") == demo["prompt_id"]
        parsed = ExposureRecord.model_validate(record)
        assert str(parsed.prompt_id) == answer["prompt_uuid"]
        assert f"v{parsed.version}" == answer["version"]
        assert parsed.version_hash == answer["content_hash"]
        assert parsed.rule == answer["traffic_rule"] == "all-in"
        assert parsed.by_split is True
        assert parsed.deployment_id is not None
        assert str(parsed.project_id) == demo["project_id"]
        assert parsed.source == "resolve"
    assert not any(f"user-{index}" in str(records) for index in range(USERS))


@pytest.mark.kafka
async def test_unit_ids_as_given_when_configured(migrated: Settings) -> None:
    settings = migrated.model_copy(update={"exposure_unit_ids": "as_given"})
    demo = await quickstart(settings)
    async with TestClient(TestServer(create_app(settings))) as client:
        await _resolve_all(client, demo)
        records = await read_topic(settings, EventKind.EXPOSURE, USERS)
    assert sorted(record["unit_id"] for record in records) == sorted(
        f"user-{index}" for index in range(USERS)
    )


@pytest.fixture
async def settings_without_kafka(tmp_path: Path) -> Settings:
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_enable_idempotence=False,
        kafka_request_timeout_ms=1000,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        log_format="text",
    )
    await upgrade(settings.database_url)
    return settings


@pytest.fixture
async def offline(settings_without_kafka: Settings) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    demo = await quickstart(settings_without_kafka)
    async with TestClient(TestServer(create_app(settings_without_kafka))) as client:
        yield client, demo


async def test_resolve_answers_without_kafka_and_counts_what_it_could_not_send(
    offline: tuple[Client, dict[str, Any]],
) -> None:
    client, demo = offline
    answers = await _resolve_all(client, demo)
    assert len(answers) == USERS
    registry = client.app[EDGE_METRICS].registry
    unsent = 0.0
    for _ in range(100):  # the flusher runs every 50 ms: a bound on waiting, not a check
        unsent = (
            registry.get_sample_value(
                "promptline_exposures_total", {"outcome": "kafka_unavailable"}
            )
            or 0.0
        )
        if unsent >= USERS:
            break
        await asyncio.sleep(0.05)
    assert unsent == USERS
    assert registry.get_sample_value("promptline_exposures_total", {"outcome": "sent"}) is None
