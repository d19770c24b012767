"""``bench.soak --services external``: the soak over a Kafka and a ClickHouse it did not start.

That is how the soak runs against docker-compose's Apache Kafka; here the session's broker
and ClickHouse stand in for them, named only through the environment as a user would.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bench import soak
from bench.resolve_http import create_prompt, prompt_ids
from bench.soak_http import ANALYTICS_PATH
from promptline.clickhouse import connect
from promptline.settings import Settings
from promptline.topics import all_topics
from tests.support.services import Endpoints

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def _post_event(settings: Settings, key: str, ids: dict[str, str]) -> int:
    body = {"prompt_id": ids["prompt_id"], "version_hash": ids["version_hash"], "latency_ms": 9}
    request = urllib.request.Request(
        f"{settings.base_url}{ANALYTICS_PATH}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _databases(settings: Settings) -> set[str]:
    client = await connect(settings, database="")
    try:
        result = await client.query("SELECT name FROM system.databases")
        return {str(row[0]) for row in result.result_rows}
    finally:
        await client.close()


def test_the_soak_stores_events_in_services_it_did_not_start_and_deletes_its_data_after(
    services: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTLINE_KAFKA_BOOTSTRAP_SERVERS", services.kafka_bootstrap)
    monkeypatch.setenv(
        "PROMPTLINE_KAFKA_ENABLE_IDEMPOTENCE", json.dumps(services.idempotent_producer)
    )
    monkeypatch.setenv("PROMPTLINE_CLICKHOUSE_URL", services.clickhouse_url)
    with soak.services(tmp_path, external=True) as (settings, key, _serve, _worker):
        assert settings.kafka_bootstrap_servers == services.kafka_bootstrap
        assert settings.clickhouse_url == services.clickhouse_url
        assert set(all_topics(settings.kafka_topic_prefix)) <= asyncio.run(
            _topics(services.kafka_bootstrap)
        )
        asyncio.run(create_prompt(settings.base_url, key))
        ids = asyncio.run(prompt_ids(settings.base_url, key))
        assert _post_event(settings, key, ids) == 204
        stored, _waited = soak.catch_up(settings, 1, 60.0)
        assert stored == 1
        assert settings.clickhouse_database in asyncio.run(_databases(settings))
    assert settings.clickhouse_database not in asyncio.run(_databases(settings))
    left = asyncio.run(_topics(services.kafka_bootstrap))
    assert not set(all_topics(settings.kafka_topic_prefix)) & left
