"""Applies the numbered ClickHouse migrations once each, and records what it applied.

Migrations are files ``NNNN_name.sql`` holding statements separated by a ``;`` at the
end of a line. Applied migrations are recorded in ``schema_migrations`` with their
checksum; a changed file that was already applied is an error, not silently skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from clickhouse_connect.driver.asyncclient import AsyncClient

from promptline.clickhouse import connect
from promptline.settings import Settings
from sql.key_retention import apply_key_retention
from sql.retention import apply_retention, retention_days

log = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The statements, without comment-only fragments."""
        parts = (part.strip() for part in STATEMENT_END.split(self.sql))
        return [part for part in parts if _has_code(part)]


class MigrationDrift(RuntimeError):
    """An applied migration's file has changed since it was applied."""


def _has_code(fragment: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in fragment.splitlines())


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("sql").joinpath("migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    return found


async def migrate(settings: Settings) -> list[Migration]:
    """Create the database, apply what is missing and set retention; returns what it applied."""
    database = settings.clickhouse_database
    server = await connect(settings, database="")
    try:
        await server.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    finally:
        await server.close()
    client = await connect(settings)
    try:
        applied = await _apply(client, database)
        await apply_retention(client, database, retention_days(settings))
        await apply_key_retention(client, database, settings.worker_dedup_window_days)
        return applied
    finally:
        await client.close()


async def _apply(client: AsyncClient, database: str) -> list[Migration]:
    await client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations ("
        " version UInt32 COMMENT 'Number of the migration file (NNNN_name.sql)',"
        " name String COMMENT 'Name of the migration file, without number and extension',"
        " checksum String COMMENT 'SHA-256 of the file as applied; a later change is an error',"
        " applied_at DateTime64(3, 'UTC') COMMENT 'When promptline migrate applied it'"
        ") ENGINE = MergeTree ORDER BY version"
        " COMMENT 'ClickHouse migrations applied by promptline migrate'"
    )
    result = await client.query(f"SELECT version, checksum FROM `{database}`.schema_migrations")
    applied = {int(row[0]): str(row[1]) for row in result.result_rows}
    done: list[Migration] = []
    for migration in await asyncio.to_thread(load_migrations):
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationDrift(
                    f"migration {migration.version:04d}_{migration.name} changed after it was"
                    " applied; add a new migration instead of editing an applied one"
                )
            continue
        for statement in migration.statements():
            await client.command(statement)
        await client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
            database=database,
        )
        log.info("applied ClickHouse migration %04d_%s", migration.version, migration.name)
        done.append(migration)
    return done
