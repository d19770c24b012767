"""One timer fails the delivery futures still pending at their deadlines, and no others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingest.deadlines import Deadlines


async def test_pending_futures_fail_at_their_deadline_settled_ones_keep_their_result() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(4)]
    start = loop.time()
    for offset, future in zip((0.01, 0.01, 0.02, 5.0), futures, strict=True):
        deadlines.watch(loop, start + offset, future)
    futures[1].set_result("acknowledged")
    await asyncio.wait(futures[:3])
    assert isinstance(futures[0].exception(), TimeoutError)
    assert futures[1].result() == "acknowledged"
    assert isinstance(futures[2].exception(), TimeoutError)
    assert not futures[3].done()  # its deadline has not come
    futures[3].cancel()


async def test_a_future_watched_after_the_queue_emptied_is_watched_too() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    first: asyncio.Future[Any] = loop.create_future()
    deadlines.watch(loop, loop.time() + 0.01, first)
    with pytest.raises(TimeoutError):
        await first
    second: asyncio.Future[Any] = loop.create_future()
    deadlines.watch(loop, loop.time() + 0.01, second)
    with pytest.raises(TimeoutError):
        await second
