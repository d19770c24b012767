"""SIGTERM stops a worker within its grace, in the middle of a retry wait, committing nothing
it has not stored; what hangs past the grace is cancelled, and the process ends regardless."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from signal import SIGTERM

import pytest

from promptline.devstack.services import free_port
from promptline.settings import Settings
from promptline.topics import EventKind, topic_name
from tests.workers.helpers import (
    ROOT,
    Tenant,
    WorkerProcess,
    analytics,
    committed_offsets,
    produce,
    scalar,
    wait_until,
)
from tests.workers.outage import clickhouse_relay
from tests.workers.status import held
from workers.shutdown import EXIT_PAST_GRACE, stop_within

HASH = "sha256:" + "7" * 64
HANG_GUARD = 60.0
"""How long a test waits for what must end much sooner: a bound against hanging, not a measure."""


async def test_a_worker_that_stops_when_interrupted_ends_by_itself() -> None:
    stop, interrupted = asyncio.Event(), asyncio.Event()

    async def waits_until_interrupted() -> None:
        await interrupted.wait()

    work = asyncio.create_task(waits_until_interrupted())
    stopping = asyncio.create_task(stop_within(work, stop, interrupted.set, grace=HANG_GUARD))
    await asyncio.sleep(0)
    assert not stopping.done()
    stop.set()
    assert await asyncio.wait_for(stopping, HANG_GUARD) is True
    assert work.done() and not work.cancelled()


async def test_what_ignores_the_interrupt_is_cancelled_past_the_grace() -> None:
    stop, interrupted = asyncio.Event(), asyncio.Event()
    stop.set()

    async def hangs() -> None:
        await asyncio.Event().wait()  # whatever it is told

    work = asyncio.create_task(hangs())
    assert (
        await asyncio.wait_for(stop_within(work, stop, interrupted.set, 0.2), HANG_GUARD) is False
    )
    assert interrupted.is_set()
    assert work.cancelled()


async def test_an_error_of_the_worker_is_raised_not_swallowed() -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        await stop_within(asyncio.create_task(fails()), asyncio.Event(), lambda: None, 1.0)


async def test_the_watchdog_ends_a_process_whose_event_loop_cannot() -> None:
    script = (
        "import time\n"
        "from workers.shutdown import Watchdog\n"
        "Watchdog(0.2).start()\n"
        "time.sleep(600)\n"  # a blocked process: only the watchdog's thread can end it
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert await asyncio.wait_for(process.wait(), HANG_GUARD) == EXIT_PAST_GRACE
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_sigterm_ends_a_worker_waiting_on_clickhouse_without_committing_the_wait(
    migrated: Settings, tmp_path: Path
) -> None:
    tenant, prompt = Tenant(), uuid.uuid4()
    topic = topic_name(migrated.kafka_topic_prefix, EventKind.ANALYTICS)
    async with clickhouse_relay(migrated) as relay:
        settings = migrated.model_copy(
            update={
                "clickhouse_url": relay.url(),
                "worker_http_port": free_port(),
                "worker_stall_seconds": 0.5,
                "worker_shutdown_grace_seconds": 20.0,
            }
        )
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        await worker.start()
        try:
            await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(4)])
            await wait_until(
                lambda: _committed(settings, topic, 4), "the first four stored and committed"
            )
            relay.switch_off()
            await produce(settings, [analytics(tenant, prompt, HASH) for _ in range(6)])
            await wait_until(
                lambda: held(settings, "clickhouse_unreachable"), "the worker waiting on ClickHouse"
            )

            assert worker.process is not None
            worker.process.send_signal(SIGTERM)
            status = await asyncio.wait_for(worker.process.wait(), HANG_GUARD)
        finally:
            await worker.kill()
    log = worker.log()
    assert status == 0, log  # it stopped by itself within the grace, not cut short at its end
    assert "did not stop within" not in log
    assert "retrying in" in log  # it was in the retry loop when told to stop
    assert (await committed_offsets(migrated, [EventKind.ANALYTICS])).get(topic, 0) == 4
    assert await scalar(migrated, "SELECT count() FROM analytics_events") == 4


async def _committed(settings: Settings, topic: str, count: int) -> bool:
    return (await committed_offsets(settings, [EventKind.ANALYTICS])).get(topic, 0) >= count
