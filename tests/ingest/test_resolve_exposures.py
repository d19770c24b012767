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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from controlplane.catalog import Principal
from controlplane.resolve import Resolution
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.migrate import upgrade
from controlplane.store.models import Project
from ingest.exposure_sink import ExposureEncoder, KafkaExposures, Timestamps
from ingest.metrics import EDGE_METRICS, EdgeMetrics
from ingest.producer import EventProducer
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


def _resolution(**changes: Any) -> Resolution:
    fields: dict[str, Any] = {
        "prompt_id": uuid.uuid4(),
        "prompt_name": "p",
        "version_number": 3,
        "version_id": uuid.uuid4(),
        "content_hash": "sha256:" + "b" * 64,
        "content": "hi",
        "traffic_rule": 'eu "users"',
        "deployment_id": uuid.uuid4(),
        "missing_variables": (),
        "by_split": False,
    }
    return Resolution(**(fields | changes))


PRINCIPAL = Principal(
    uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "team", frozenset(), unit_key=b"k" * 32
)


@given(
    user_id=st.text(min_size=1, max_size=50),
    hashed=st.booleans(),
    deployed=st.booleans(),
    moment=st.floats(min_value=0, max_value=4e9),
)
def test_an_encoded_exposure_is_a_valid_record(
    user_id: str, hashed: bool, deployed: bool, moment: float
) -> None:
    resolution = _resolution(deployment_id=uuid.uuid4() if deployed else None)
    stamp = Timestamps().format(moment)
    key, value = ExposureEncoder().encode(PRINCIPAL, resolution, user_id, stamp, hashed)
    record = ExposureRecord.model_validate_json(value)
    assert key == str(resolution.prompt_id).encode()
    expected_time = datetime.fromtimestamp(moment, UTC).replace(
        microsecond=int(round(moment - int(moment), 6) * 1000) * 1000 % 1_000_000
    )
    assert abs((record.received_at - expected_time).total_seconds()) < 0.002
    assert record.unit_id == (unit_id(b"k" * 32, user_id) if hashed else user_id)
    assert record.deployment_id == resolution.deployment_id
    assert (record.rule, record.by_split, record.version) == ('eu "users"', False, 3)
    assert (record.org_id, record.project_id) == (PRINCIPAL.org_id, PRINCIPAL.project_id)


async def test_a_full_queue_and_a_missing_broker_are_counted() -> None:
    metrics = EdgeMetrics()
    producer = EventProducer(AIOKafkaProducer(bootstrap_servers="127.0.0.1:1"), ack_timeout=1.0)
    sink = KafkaExposures(producer, "t", metrics, queue_max=3)
    for index in range(5):
        sink.expose(PRINCIPAL, _resolution(), f"u{index}")
    assert sink.queued == 3
    await sink.flush()
    counts = {
        outcome: metrics.registry.get_sample_value(
            "promptline_exposures_total", {"outcome": outcome}
        )
        for outcome in ("queue_full", "kafka_unavailable", "sent")
    }
    assert counts == {"queue_full": 2.0, "kafka_unavailable": 3.0, "sent": None}
    assert sink.queued == 0
    await producer.stop()
