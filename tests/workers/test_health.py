"""``/healthz`` tells the truth: 503 with why while a partition is held, 200 again after."""

from __future__ import annotations

import uuid

import pytest

from promptline.devstack.services import free_port
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import Tenant, analytics, command, produce, scalar, wait_until
from tests.workers.outage import clickhouse_relay
from tests.workers.status import by_label, health_if, held, metrics, running_worker, value

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH = "sha256:" + "5" * 64


def _served(settings: Settings, **update: object) -> Settings:
    return settings.model_copy(
        update={"worker_http_port": free_port(), "worker_stall_seconds": 0.5, **update}
    )


async def test_unhealthy_while_clickhouse_is_unreachable_and_healthy_once_it_is_back(
    migrated: Settings,
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    async with clickhouse_relay(migrated) as relay:
        settings = _served(migrated, clickhouse_url=relay.url())
        async with running_worker(settings):
            healthy = await wait_until(lambda: health_if(settings, 200), "healthy at start")
            assert healthy["status"] == "ok" and healthy["rows_written"] == 0

            relay.switch_off()
            await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(5)])
            body = await wait_until(
                lambda: held(settings, "clickhouse_unreachable"),
                "unhealthy while ClickHouse is unreachable",
            )
            assert body["status"] == "unhealthy"
            assert body["reason"].startswith("ClickHouse unreachable, waiting for ")
            assert "OperationalError" in body["reason"]
            analytics_topic = topic_name(settings.kafka_topic_prefix, EventKind.ANALYTICS)
            assert {p["topic"] for p in body["partitions"]} == {analytics_topic}
            assert all(p["stalled_seconds"] >= 0.5 for p in body["partitions"])
            assert body["rows_written"] == 0

            relay.switch_on()
            back = await wait_until(
                lambda: _healthy_with_rows(settings, 5), "healthy with every row stored"
            )
            assert back["status"] == "ok"
    assert await scalar(migrated, "SELECT count() FROM analytics_events") == 5


async def test_unhealthy_while_stuck_on_a_block_clickhouse_refuses_whole_and_healthy_once_fixed(
    migrated: Settings,
) -> None:
    """Every record fails, each alone too (the hourly aggregate refuses any row): the
    warehouse is at fault, and the reason carries ClickHouse's message."""
    settings = _served(migrated)
    await command(settings, "ALTER TABLE analytics_hourly ADD CONSTRAINT down CHECK events = 0")
    tenant, prompt = Tenant(), uuid.uuid4()
    async with running_worker(settings):
        await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(5)])
        body = await wait_until(lambda: held(settings, "stuck_on_block"), "unhealthy while stuck")
        assert body["reason"].startswith("stuck on a block for ")
        assert "`down`" in body["reason"]  # ClickHouse's message names the constraint
        topic = topic_name(settings.kafka_topic_prefix, EventKind.ANALYTICS)
        assert {p["topic"] for p in body["partitions"]} == {topic}
        assert (body["rows_written"], body["dead_lettered"]) == (0, 0)
        samples = await metrics(settings)
        assert by_label(samples, "promptline_worker_held", "hold")["stuck_on_block"] == 1
        assert value(samples, "promptline_worker_healthy") == 0

        await command(settings, "ALTER TABLE analytics_hourly DROP CONSTRAINT down")
        back = await wait_until(
            lambda: _healthy_with_rows(settings, 5), "healthy once the table takes rows again"
        )
        assert back["dead_lettered"] == 0
    assert await scalar(migrated, "SELECT sum(events) FROM analytics_hourly") == 5


async def _healthy_with_rows(settings: Settings, rows: int) -> dict[str, object] | None:
    body = await health_if(settings, 200)
    return body if body is not None and body["rows_written"] == rows else None
