"""A migrated SQLite store of its own per test: the admin commands read it back whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controlplane.store.migrate import upgrade
from promptline.settings import Settings


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    """Settings whose store is a fresh, migrated SQLite file and whose state is ``tmp_path``."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'control.db'}"
    asyncio.run(upgrade(url))
    return Settings(database_url=url, state_dir=tmp_path / "state")
