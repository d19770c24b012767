"""``promptline migrate``: bring the store, ClickHouse and Kafka topics up to date."""

from __future__ import annotations

import logging

from controlplane.store.migrate import upgrade
from promptline.kafka import ensure_topics
from promptline.settings import Settings
from sql.runner import migrate as migrate_clickhouse

log = logging.getLogger(__name__)

TARGETS = ("store", "clickhouse", "kafka")


async def run_migrations(settings: Settings, targets: tuple[str, ...] = TARGETS) -> None:
    """Apply every pending migration of each target; safe to run again."""
    if "store" in targets:
        await upgrade(settings.database_url)
        log.info("control-plane store is at the latest revision")
    if "clickhouse" in targets:
        applied = await migrate_clickhouse(settings)
        log.info("ClickHouse: applied %d migration(s)", len(applied))
    if "kafka" in targets:
        created = await ensure_topics(settings)
        log.info("Kafka: created %d topic(s)", len(created))
