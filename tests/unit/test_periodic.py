"""Periodic runs its work in rounds, survives a failing round, and stops cleanly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from promptline.periodic import Periodic


async def test_rounds_go_on_after_a_failure_and_stop_cancels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("a bad round")
        if len(rounds) == 3:
            third.set()

    periodic = Periodic("test-rounds", 0.001, work, failure="round failed")
    periodic.start()
    await asyncio.wait_for(third.wait(), 10)
    await periodic.stop()
    stopped_at = len(rounds)
    await asyncio.sleep(0.01)
    assert len(rounds) == stopped_at >= 3
    failures = [r for r in caplog.records if r.message == "round failed"]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR


async def test_first_round_can_wait_one_interval() -> None:
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    periodic = Periodic("test-late", 3600, work, failure="x", first_at_once=False)
    periodic.start()
    await asyncio.sleep(0.01)
    assert not ran.is_set()
    await periodic.stop()
    await periodic.stop()  # stopping twice is harmless
