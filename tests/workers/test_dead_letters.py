"""Poison records: dead-lettered with the reason, listed, and replayed once fixed, never twice."""

from __future__ import annotations

import dataclasses
import json
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from promptline.commands.deadletters import replay_group
from promptline.settings import Settings
from promptline.topics import EventKind, dead_letter_topic, topic_name
from schemas.records import AnalyticsRecord
from tests.workers.helpers import (
    Tenant,
    analytics,
    cli,
    committed_offsets,
    in_process_worker,
    produce,
    query,
    wait_until,
)
from workers.tables import ANALYTICS

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HASH = "sha256:" + "c" * 64


class _NoScoresYet(AnalyticsRecord):
    """What an older worker understood: analytics events without a score."""

    score: None = None


async def _settled(settings: Settings, expected: dict[str, int]) -> bool:
    committed = await committed_offsets(settings, list(EventKind))
    return all(committed.get(topic, 0) >= count for topic, count in expected.items())


async def _listed(settings: Settings) -> list[dict[str, object]]:
    out = await cli(settings, "dead-letters", "list", "--json")
    return [json.loads(line) for line in out.splitlines()]


async def _stored(settings: Settings) -> tuple[object, ...]:
    raw = await query(settings, "SELECT count(), sum(score) FROM analytics_events")
    hourly = await query(settings, "SELECT sum(events), sum(score_sum) FROM analytics_hourly")
    return raw[0] + hourly[0]


async def test_poison_is_parked_listed_and_replayed_once_after_a_fix(migrated: Settings) -> None:
    analytics_topic = topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS)
    signals_topic = topic_name(migrated.kafka_topic_prefix, EventKind.SIGNAL)
    tenant, prompt = Tenant(), uuid.uuid4()
    key = str(prompt).encode()
    plain = analytics(tenant, prompt, HASH, latency=5)
    scored = [analytics(tenant, prompt, HASH, latency=7, score=s) for s in (0.25, 0.5)]
    future = orjson.dumps({"v": 2, "kind": "signal", "prompt_id": str(prompt)})
    old_worker = {EventKind.ANALYTICS: dataclasses.replace(ANALYTICS, record=_NoScoresYet)}

    async with in_process_worker(migrated, specs=old_worker):
        await produce(
            migrated,
            [(analytics_topic, key, b"{not json"), (signals_topic, key, future), *scored, plain],
        )
        await wait_until(
            lambda: _settled(migrated, {analytics_topic: 4, signals_topic: 1}), "all read"
        )
    assert await _stored(migrated) == (1, None, 1, 0.0)  # the worker went on past the poison
    listed = await _listed(migrated)
    reasons = sorted(str(entry["reason"]).split(":")[0] for entry in listed)
    assert reasons == [
        "schema mismatch",
        "schema mismatch",
        "undecodable JSON",
        "unsupported schema version 2",
    ]
    by_value = {entry["value_preview"]: entry for entry in listed}
    poison = by_value["{not json"]
    assert poison["source_topic"] == analytics_topic
    assert isinstance(poison["source_offset"], int) and poison["attempts"] == 1
    text = await cli(migrated, "dead-letters", "list", "--limit", "1")
    assert text.count("reason:") == 1 and "1 dead letter(s) shown" in text
    assert f"{analytics_topic}[" in text or f"{signals_topic}[" in text

    async with in_process_worker(migrated) as (worker, _task, _stop):
        out = await cli(migrated, "dead-letters", "replay", "--topic", "analytics")
        assert f"{analytics_topic}: 3" in out  # the bad JSON and both scored events
        await wait_until(lambda: worker.stats.rows_written == 2, "replayed events stored")
        assert await _stored(migrated) == (3, 0.75, 3, 0.75)
        await wait_until(
            lambda: _settled(migrated, {analytics_topic: 7, signals_topic: 1}), "replay read"
        )
        # Replaying again sends only what was dead-lettered since: the bad JSON, which failed
        # again, and the signal, never replayed; the stored events are not sent again.
        out = await cli(migrated, "dead-letters", "replay")
        assert "replayed 2 dead letter(s)" in out
        assert f"{analytics_topic}: 1" in out and f"{signals_topic}: 1" in out
        await wait_until(
            lambda: _settled(migrated, {analytics_topic: 8, signals_topic: 2}), "replay read"
        )
        # A replay whose commit was lost sends everything again: still nothing stored twice.
        await _forget_replays(migrated, analytics_topic)
        out = await cli(migrated, "dead-letters", "replay", "--topic", "analytics")
        assert f"{analytics_topic}: 3" in out
        await wait_until(lambda: worker.stats.duplicates_dropped == 2, "copies dropped")
        await wait_until(lambda: _settled(migrated, {analytics_topic: 11}), "all read")
    assert await _stored(migrated) == (3, 0.75, 3, 0.75)
    listed = await _listed(migrated)
    attempts = {entry["value_preview"]: entry["attempts"] for entry in listed}
    assert attempts["{not json"] == 4  # first read and three replays: still one dead letter
    assert len(listed) == 4


async def _forget_replays(settings: Settings, source_topic: str) -> None:
    """Move the replay group of ``source_topic`` back to the start of the dead letters."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=replay_group(settings, source_topic),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topic = dead_letter_topic(settings.kafka_topic_prefix)
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()
