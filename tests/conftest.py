"""Fixtures shared by all tests: real services, per-test settings, no blocking calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

from promptline.commands.migrate import run_migrations
from promptline.devstack.services import free_port
from promptline.settings import Settings
from tests.support.postgres import Postgres, postgres_for_tests
from tests.support.redis import redis_for_tests
from tests.support.services import Endpoints, chosen_flavour, real_services

OUR_PACKAGES = ["promptline", "controlplane", "ingest", "workers", "schemas", "sql", "ui"]


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which our code makes a blocking call on the event loop."""
    with blockbuster_ctx(OUR_PACKAGES) as detector:
        # Not real I/O: SQLAlchemy makes the SQLite file name absolute when an engine is made.
        detector.functions["os.path.abspath"].can_block_in(
            "sqlalchemy/dialects/sqlite/pysqlite.py", "create_connect_args"
        )
        yield detector


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A real Kafka-protocol broker and a real ClickHouse, for the whole session."""
    with real_services(tmp_path_factory.mktemp("services")) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole session: started on first use, stopped at its end."""
    with postgres_for_tests(chosen_flavour()) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server's URL for the whole session: started on first use, stopped at its end."""
    with redis_for_tests(chosen_flavour(), tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def settings(services: Endpoints, tmp_path: Path) -> Settings:
    """Settings for one test: its own topics, ClickHouse database, store and ports."""
    tag = uuid.uuid4().hex[:12]
    return Settings(
        kafka_bootstrap_servers=services.kafka_bootstrap,
        kafka_topic_prefix=f"test-{tag}.",
        kafka_enable_idempotence=services.idempotent_producer,
        kafka_topic_partitions=3,
        kafka_session_timeout_ms=6000,
        kafka_consumer_group=f"test-{tag}",
        clickhouse_url=services.clickhouse_url,
        clickhouse_database=f"test_{tag}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        listen_port=free_port(),
        worker_http_port=0,
        worker_batch_max_seconds=0.2,
        log_format="text",
        state_dir=tmp_path / "state",
    )


@pytest.fixture
async def migrated(settings: Settings) -> Settings:
    """``settings`` with the store, ClickHouse and topics migrated."""
    await run_migrations(settings)
    return settings


SERVICE_MARKERS = {
    "services": ("kafka", "clickhouse"),
    "postgres": ("postgres",),
    "redis_url": ("redis",),
}
"""The markers a test that takes each service fixture must carry (one of them)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a real service must say so with its marker (-m kafka, -m redis...)."""
    unmarked = [
        f"{item.nodeid} ({' or '.join(markers)})"
        for item in items
        for fixture, markers in SERVICE_MARKERS.items()
        if fixture in getattr(item, "fixturenames", ())
        and not any(item.get_closest_marker(name) for name in markers)
    ]
    if unmarked:
        raise pytest.UsageError("tests using real services need a marker: " + ", ".join(unmarked))
