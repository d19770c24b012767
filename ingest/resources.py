"""Opening and closing what the edge holds beyond the shared catalog and producer.

The server's cleanup context calls :func:`open_edge` once the catalog is up and the
producer started (it may still be connecting: ``ingest.producer``), and
:func:`close_edge` after the producer has flushed: by then the runner has stopped
accepting and drained in-flight requests, so no id is issued after the node number is
handed back.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from controlplane.catalog import CatalogWatcher
from ingest.admission import RequestLimiter
from ingest.confluent_producer import ConfluentKafka
from ingest.context import EdgeContext, EdgeLimits, ExposurePolicy
from ingest.key_housekeeping import KeyHousekeeping
from ingest.metrics import EdgeMetrics
from ingest.node_lease import NodeLease
from ingest.producer import EventProducer
from ingest.quota_store import StoreQuota
from ingest.signal_ids import SignalIdGenerator
from promptline.kafka import confluent_config, create_producer
from promptline.settings import Settings


def edge_producer(settings: Settings) -> EventProducer:
    """The edge's producer: a request waits ``edge_ack_timeout_seconds`` for its acks.

    That is shorter than the Kafka client's own request timeout on purpose: a client
    waiting on a slow broker is better told 503 soon, with Retry-After, than held.
    """
    client: AIOKafkaProducer | ConfluentKafka
    if settings.edge_kafka_client == "confluent":
        timeout = settings.kafka_request_timeout_ms / 1000
        client = ConfluentKafka(confluent_config(settings), connect_timeout=timeout)
    else:
        client = create_producer(settings)
    return EventProducer(client, ack_timeout=settings.edge_ack_timeout_seconds)


def edge_limits(settings: Settings) -> EdgeLimits:
    """The body and batch limits the settings ask for."""
    return EdgeLimits(
        max_body_bytes=settings.edge_max_body_bytes,
        batch_max_bytes=settings.edge_batch_max_bytes,
        batch_max_events=settings.edge_batch_max_events,
        retry_after_seconds=settings.edge_retry_after_seconds,
    )


async def open_edge(
    settings: Settings,
    catalog: CatalogWatcher,
    producer: EventProducer,
    limiter: RequestLimiter,
    metrics: EdgeMetrics,
) -> EdgeContext:
    """The edge's context: the store-backed quota, a leased signal-id node, key housekeeping."""
    lease = NodeLease(catalog.sessions, settings.edge_node_lease_seconds)
    await lease.start()
    housekeeping = KeyHousekeeping(catalog.sessions)
    housekeeping.start()
    return EdgeContext(
        catalog=catalog,
        producer=producer,
        topic_prefix=settings.kafka_topic_prefix,
        limiter=limiter,
        quota=StoreQuota(catalog.sessions),
        signal_ids=SignalIdGenerator(lease),
        limits=edge_limits(settings),
        exposures=ExposurePolicy(
            hashed=settings.exposure_unit_ids == "hashed",
            retention_days=settings.exposure_retention_days,
        ),
        metrics=metrics,
        node_lease=lease,
        housekeeping=housekeeping,
    )


async def close_edge(ctx: EdgeContext) -> None:
    """Stop the key housekeeping; hand the signal-id node number back (after the flush)."""
    if ctx.housekeeping is not None:
        await ctx.housekeeping.stop()
    if ctx.node_lease is not None:
        await ctx.node_lease.stop(ctx.signal_ids.issued_until_ms)
