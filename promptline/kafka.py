"""Kafka clients configured from settings, and topic creation."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from promptline.settings import Settings
from promptline.topics import all_topics

log = logging.getLogger(__name__)


def create_producer(settings: Settings) -> AIOKafkaProducer:
    """A batching producer that waits for all in-sync replicas (acks=all).

    Idempotence is on unless the settings turn it off (the local broker lacks it).
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_max_batch_bytes,
        compression_type=settings.kafka_compression or None,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )


def confluent_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's settings for the same producer as :func:`create_producer`.

    ``murmur2_random`` is Java's default partitioner, the one aiokafka applies to a key, so a
    prompt's records land on the same partition whichever client the edge runs.
    """
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable.idempotence": settings.kafka_enable_idempotence,
        "linger.ms": settings.kafka_linger_ms,
        "batch.size": settings.kafka_max_batch_bytes,
        "compression.type": settings.kafka_compression or "none",
        "request.timeout.ms": settings.kafka_request_timeout_ms,
        # aiokafka expires a batch not acknowledged within its request timeout: the same.
        "message.timeout.ms": settings.kafka_request_timeout_ms,
        "partitioner": "murmur2_random",
    }


def create_consumer(settings: Settings, topics: list[str], group_id: str) -> AIOKafkaConsumer:
    """A consumer that never commits on its own: offsets move only after ClickHouse has a batch."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(500, settings.kafka_session_timeout_ms // 5),
        max_poll_records=settings.worker_batch_max_rows,
    )


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the product's topics if missing; returns the names of those it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        for name in all_topics(settings.kafka_topic_prefix):
            if name in existing:
                continue
            topic = NewTopic(
                name,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
            response = await admin.create_topics([topic])
            for _topic, error_code, error_message in response.topic_errors:
                if error_code == TopicAlreadyExistsError.errno:
                    continue
                if error_code != 0:
                    raise RuntimeError(f"cannot create topic {name}: {error_code} {error_message}")
                created.append(name)
    finally:
        await admin.close()
    if created:
        log.info("created topics %s", created)
    return created
