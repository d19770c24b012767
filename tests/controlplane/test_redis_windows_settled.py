"""A tick's checks sent to Redis are always answered: by a verdict each, or by a failure
the limiter reads as "Redis unavailable", never left waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controlplane.api.redis_windows import RedisWindows, WindowCheck, WindowsUnavailable

CHECK = WindowCheck.of([("window-key", 5, 60)])


class Script:
    """Stands in for the registered script: answers with ``verdicts``, or never."""

    def __init__(self, verdicts: list[str] | None) -> None:
        self.verdicts = verdicts
        self.started = asyncio.Event()

    async def execute(self, keys: list[str], args: list[Any]) -> list[str]:
        self.started.set()
        if self.verdicts is None:
            await asyncio.Event().wait()
        assert self.verdicts is not None
        return self.verdicts


class Client:
    """A client whose only use here is to register :class:`Script`."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def register_script(self, _source: str) -> Script:
        return self.script


async def _windows(verdicts: list[str] | None) -> tuple[RedisWindows, Script]:
    script = Script(verdicts)
    return RedisWindows(Client(script)), script


async def test_one_verdict_per_check_answers_each_check() -> None:
    windows, _script = await _windows(["", "0 12.5"])
    first, second = windows.hit(CHECK), windows.hit(CHECK)
    assert await first is None
    assert await second == (0, 12.5)


async def test_an_answer_without_one_verdict_per_check_fails_every_check() -> None:
    windows, _script = await _windows([""])
    checks = [windows.hit(CHECK) for _ in range(3)]
    outcomes = await asyncio.gather(*checks, return_exceptions=True)
    assert all(isinstance(outcome, WindowsUnavailable) for outcome in outcomes)
    assert "1 verdicts for 3 checks" in str(outcomes[0])


async def test_a_malformed_verdict_fails_the_checks_still_waiting() -> None:
    windows, _script = await _windows(["", "not-a-refusal"])
    first, second = windows.hit(CHECK), windows.hit(CHECK)
    assert await first is None
    with pytest.raises(WindowsUnavailable):
        await second


async def test_a_cancelled_call_fails_its_checks_and_the_next_call_goes_out() -> None:
    windows, script = await _windows(None)
    waiting = windows.hit(CHECK)
    await script.started.wait()
    later = windows.hit(CHECK)  # gathers for the call after the one in flight
    sending = windows._sending
    assert sending is not None
    sending.cancel()
    with pytest.raises(WindowsUnavailable, match="did not finish"):
        await waiting
    script.verdicts = [""]
    assert await later is None
