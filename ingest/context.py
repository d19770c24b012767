"""What the edge's handlers share, stored on the application."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from controlplane.catalog import CatalogWatcher
from ingest.admission import NoRequestLimits, RequestLimiter
from ingest.key_housekeeping import KeyHousekeeping
from ingest.metrics import EdgeMetrics
from ingest.node_lease import NodeLease
from ingest.producer import EventProducer
from ingest.quota import MemoryQuota, SignalQuota
from ingest.signal_ids import SignalIdGenerator, StaticLease
from promptline.topics import EventKind, topic_name


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Size limits of the edge's bodies (settings ``edge_*``)."""

    max_body_bytes: int = 65_536
    batch_max_bytes: int = 5_242_880
    batch_max_events: int = 500
    retry_after_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class ExposurePolicy:
    """How the edge takes exposures a client reports (settings ``exposure_*``).

    ``hashed`` stores the keyed hash of the user id as the unit id (as resolve does);
    ``retention_days`` is how long exposures are kept (0: forever): a client may not report
    one older than that, which the warehouse would delete at once.
    """

    hashed: bool = True
    retention_days: int = 90


@dataclass(slots=True)
class EdgeContext:
    """The edge's collaborators.

    Only the first three are required, so a test can build one around a fake producer;
    the server passes all of them (``ingest.resources.open_edge``), with the store-backed
    quota, a leased signal-id node and the housekeeping of the quota's idempotency keys.
    """

    catalog: CatalogWatcher
    producer: EventProducer
    topic_prefix: str
    limiter: RequestLimiter = field(default_factory=NoRequestLimits)
    quota: SignalQuota = field(default_factory=MemoryQuota)
    signal_ids: SignalIdGenerator = field(default_factory=lambda: SignalIdGenerator(StaticLease(0)))
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    exposures: ExposurePolicy = field(default_factory=ExposurePolicy)
    metrics: EdgeMetrics = field(default_factory=EdgeMetrics)
    node_lease: NodeLease | None = None
    housekeeping: KeyHousekeeping | None = None
    _topics: dict[EventKind, str] = field(default_factory=dict, init=False, repr=False)

    def topic(self, kind: EventKind) -> str:
        """The topic that carries events of ``kind`` (named once per kind)."""
        topic = self._topics.get(kind)
        if topic is None:
            topic = self._topics[kind] = topic_name(self.topic_prefix, kind)
        return topic


EDGE_CONTEXT = web.AppKey("edge_context", EdgeContext)
