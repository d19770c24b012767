"""Fixtures of the SDK's tests: a fake server (``fake_server``), never the real one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_server import FakeServer


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake server; its streams end at teardown, so no generator outlives the test."""
    fake = FakeServer()
    yield fake
    fake.stream_up = False
