"""What the edge's handlers share, stored on the application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from controlplane.catalog import CatalogWatcher
from ingest.producer import EventProducer


@dataclass(slots=True)
class EdgeContext:
    """The edge's collaborators: the catalog view, the producer and topic names."""

    catalog: CatalogWatcher
    producer: EventProducer
    topic_prefix: str


EDGE_CONTEXT = web.AppKey("edge_context", EdgeContext)
