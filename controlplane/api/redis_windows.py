"""Moving windows in Redis, the checks of one event-loop tick counted in one round trip.

``limits``' Redis strategy runs one script per check and window: a coredis call that cost a
serving process 240 to 411 µs of CPU, so with limits in Redis one process served 2,080
resolves/s against 5,326 with them in memory. Under load many requests are checked in the
same tick; here they wait for the tick's end and go to Redis as one script call, and while
it is out the next ones gather for the call after it (at most one in flight, so the busier
the process, the more each call carries).

The script counts exactly as ``limits``' moving window does (the same keys, entries and
expiry; a check's windows in order, stopping at the first that refuses), the checks in the
order they were made, all at one timestamp, so the counts are those of the same checks made
one by one, and processes sharing the Redis share the counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CHECKS_PER_CALL = 1_000
"""Checks sent in one script call; more wait for the next (bounded argument lists)."""

SCRIPT = """
-- ARGV: now, then per check its window count n and n pairs (limit, expiry);
-- KEYS: every window's key in the same order. One verdict per check: '' when counted,
-- else '<window index> <oldest entry in that window>'.
local now = tonumber(ARGV[1])
local verdicts = {}
local arg, key = 2, 1
local check = 1
while arg <= #ARGV do
  local windows = tonumber(ARGV[arg])
  arg = arg + 1
  local verdict = ''
  for index = 0, windows - 1 do
    local limit, expiry = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
    local name = KEYS[key]
    arg, key = arg + 2, key + 1
    if verdict == '' then
      if limit < 1 then
        verdict = index .. ' ' .. now
      else
        local entry = redis.call('lindex', name, limit - 1)
        if entry and tonumber(entry) >= now - expiry then
          verdict = index .. ' ' .. entry
        else
          redis.call('lpush', name, now)
          redis.call('ltrim', name, 0, limit - 1)
          redis.call('expire', name, expiry)
        end
      end
    end
  end
  verdicts[check] = verdict
  check = check + 1
end
return verdicts
"""


class WindowsUnavailable(Exception):
    """Redis could not be asked; the caller decides (the limiter lets the call through)."""


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """One check's windows: their Redis keys and, per window, (limit, expiry seconds)."""

    keys: tuple[str, ...]
    args: tuple[int, ...]
    """The window count, then limit and expiry of each window, as the script reads them."""

    @classmethod
    def of(cls, windows: Sequence[tuple[str, int, int]]) -> WindowCheck:
        """From (key, limit, expiry) per window, in the order they are checked."""
        args = [len(windows)]
        for _key, limit, expiry in windows:
            args += (limit, expiry)
        return cls(tuple(key for key, _limit, _expiry in windows), tuple(args))


Refusal = tuple[int, float]
"""(index of the window that refused, its oldest entry's time): it frees at that + expiry."""


class RedisWindows:
    """Counts checks against moving windows in Redis, a tick's checks in one call."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._script = client.register_script(SCRIPT)
        self._clock = clock
        self._pending: list[tuple[WindowCheck, asyncio.Future[Refusal | None]]] = []
        self._busy = False
        self._sending: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, redis_url: str) -> RedisWindows:
        """A client of ``redis_url`` (``async+`` prefixes, as ``limits`` takes them, too).

        coredis's first import reads many files: import it in a thread first.
        """
        import coredis

        url = redis_url.removeprefix("async+")
        return cls(coredis.Redis.from_url(url, decode_responses=True))

    def hit(self, check: WindowCheck) -> asyncio.Future[Refusal | None]:
        """Count ``check``; the future says None once counted, or which window refused.

        It fails with :class:`WindowsUnavailable` when Redis cannot be asked.
        """
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[Refusal | None] = loop.create_future()
        self._pending.append((check, verdict))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._send)  # after every check this tick makes
        return verdict

    def _send(self) -> None:
        batch = self._pending[:MAX_CHECKS_PER_CALL]
        del self._pending[:MAX_CHECKS_PER_CALL]
        self._sending = asyncio.get_running_loop().create_task(self._round_trip(batch))

    async def _round_trip(
        self, batch: list[tuple[WindowCheck, asyncio.Future[Refusal | None]]]
    ) -> None:
        keys: list[str] = []
        args: list[Any] = [repr(self._clock())]
        for check, _verdict in batch:
            keys += check.keys
            args += check.args
        # Every verdict is settled whatever happens: a request never waits for an answer
        # that cannot come (a call cancelled, or an answer without one verdict per check).
        failure: WindowsUnavailable | None = WindowsUnavailable("the call did not finish")
        try:
            verdicts = await self._script.execute(keys, args)
            if len(verdicts) == len(batch):
                for (_check, verdict), said in zip(batch, verdicts, strict=True):
                    if not verdict.done():
                        verdict.set_result(_refusal(said))
                failure = None
            else:
                failure = WindowsUnavailable(f"{len(verdicts)} verdicts for {len(batch)} checks")
        except Exception as error:  # any failure of Redis or its client: the caller decides
            failure = WindowsUnavailable(repr(error))
        finally:
            if failure is not None:
                for _check, verdict in batch:
                    if not verdict.done():
                        verdict.set_exception(failure)
            if self._pending:
                self._send()
            else:
                self._busy = False
                self._sending = None

    async def close(self) -> None:
        """Wait for the call in flight, then drop the connections."""
        sending = self._sending
        if sending is not None:
            await asyncio.wait([sending])
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()


def _refusal(said: str | bytes) -> Refusal | None:
    if not said:
        return None
    text = said.decode() if isinstance(said, bytes) else said
    index, oldest = text.split(" ", 1)
    return int(index), float(oldest)
