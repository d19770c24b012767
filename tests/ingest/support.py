"""An edge application around an in-memory catalog and a fake producer, for unit tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from aiohttp import web

from controlplane.catalog import Catalog, CatalogWatcher, Principal, PromptEntry, VersionEntry
from controlplane.keys import digest
from ingest.context import EDGE_CONTEXT, EdgeContext, EdgeLimits
from ingest.metrics import EDGE_METRICS, EdgeMetrics
from ingest.observe import serving_app
from ingest.producer import EventProducer, Outgoing, ProduceFailed
from ingest.quota import MemoryQuota
from ingest.routes import ANY_ORIGIN, add_routes
from promptline.http.families import dialect_for

KEY, READ_ONLY_KEY, OTHER_PROJECT_KEY = "pl_sk_ingest", "pl_sk_read", "pl_sk_other"
ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()
PROJECT, OTHER_PROJECT = uuid.uuid4(), uuid.uuid4()
PROMPT, OTHER_PROMPT = uuid.uuid4(), uuid.uuid4()
PROMPT_NAME = "checkout-assistant"
HASH_1, HASH_2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
VERSION_1, VERSION_2 = VersionEntry(uuid.uuid4(), 1, HASH_1), VersionEntry(uuid.uuid4(), 2, HASH_2)
PREFIX = "t."


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def build_catalog(plan: str = "free", overrides: dict[str, Any] | None = None) -> Catalog:
    """One organisation with a project holding PROMPT (versions 1 and 2), and a stranger."""

    def principal(project: uuid.UUID, org: uuid.UUID, scopes: set[str]) -> Principal:
        return Principal(uuid.uuid4(), project, org, plan, frozenset(scopes), dict(overrides or {}))

    versions = {1: VERSION_1, 2: VERSION_2}
    return Catalog(
        revision=1,
        principals={
            digest(KEY): principal(PROJECT, ORG, {"ingest"}),
            digest(READ_ONLY_KEY): principal(PROJECT, ORG, {"read", "write"}),
            digest(OTHER_PROJECT_KEY): principal(OTHER_PROJECT, OTHER_ORG, {"ingest"}),
        },
        prompts={
            PROMPT: PromptEntry(
                PROMPT,
                PROJECT,
                PROMPT_NAME,
                versions,
                {v.content_hash: v for v in versions.values()},
            ),
            OTHER_PROMPT: PromptEntry(OTHER_PROMPT, OTHER_PROJECT, "secret", {}, {}),
        },
    )


@dataclass
class FakeProducer(EventProducer):
    """Keeps what it was given; ``fails`` decides per record whether Kafka refuses it."""

    sent: list[Outgoing] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    fails: Callable[[Outgoing], bool] = lambda _record: False
    delay: float = 0.0
    connected: bool = True

    async def produce(self, topic: str, key: bytes, value: bytes) -> None:
        [failure] = await self.produce_many([Outgoing(topic, key, value)])
        if failure is not None:
            raise failure

    async def produce_many(self, records: Sequence[Outgoing]) -> list[ProduceFailed | None]:
        self.calls.append(len(records))
        if self.delay:
            await asyncio.sleep(self.delay)
        outcomes: list[ProduceFailed | None] = []
        for record in records:
            if self.fails(record):
                outcomes.append(ProduceFailed("broker down"))
            else:
                self.sent.append(record)
                outcomes.append(None)
        return outcomes

    def records(self, topic_suffix: str = "") -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.sent if r.topic.endswith(topic_suffix)]


def edge_app(
    producer: FakeProducer,
    catalog: Catalog | None = None,
    **overrides: Any,
) -> web.Application:
    """The edge routes with the real middlewares, over fakes for Kafka and the store."""
    watcher = CatalogWatcher(sessions=cast("Any", None))
    watcher.current = catalog or build_catalog()
    metrics = overrides.pop("metrics", None) or EdgeMetrics()
    access_log = overrides.pop("access_log", False)
    cors = overrides.pop("cors", ANY_ORIGIN)
    app = serving_app(dialect_for, metrics, access_log)
    app[EDGE_METRICS] = metrics
    overrides.setdefault("quota", MemoryQuota())
    overrides.setdefault("limits", EdgeLimits())
    app[EDGE_CONTEXT] = EdgeContext(
        catalog=watcher, producer=producer, topic_prefix=PREFIX, metrics=metrics, **overrides
    )
    add_routes(app, cors)
    return app
