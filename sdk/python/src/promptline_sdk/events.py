"""The event sender: analytics, signals, usage links and exposures, batched in the background.

``EventSender`` sends from a daemon thread, ``AsyncEventSender`` from a task on the running
event loop; both have the same methods and decide alike (``promptline_sdk._engine``).

- **Calls return at once.** ``analytics()``, ``signal()``, ``usage()`` and ``exposure()``
  append a tuple to a deque and return the event's idempotency key: no lock, no I/O, no
  JSON on the caller's thread. The key is made when the event is (or is the caller's),
  and every retry sends the same encoded event, so the edge stores it once.
- **Batches** of up to ``batch_size`` events go to ``POST /api/v1/events/batch`` when that
  many are queued, else every ``flush_interval`` seconds.
- **Retries.** An event the edge refuses with 429 or 503 (or with a ``retry_after``) is
  retried; any other refused event is dropped and counted under its error code (logged
  once a minute per code, with the edge's message, never the key nor the event). A
  request that fails as a whole (connection, timeout, 5xx, 408, 429) is retried without
  limit, after a backoff (doubling from ``retry_base`` to ``retry_cap``, jittered) that is
  never shorter than ``Retry-After``; the sender sends nothing else meanwhile. A wait
  longer than ``max_retry_after`` for one event (a monthly signal quota that is used up)
  drops it, counted as ``rate_limited``.
- **Bounded queue.** At most ``max_queue`` events wait; when it is full a new event is
  dropped (the newest: those queued first keep their place), counted in
  ``stats.dropped["queue_full"]`` and warned about once a minute. Events waiting for a
  retry stay: they are never dropped for new ones.
- **flush, close, exit.** ``flush(timeout)`` sends what is queued now and waits for it;
  ``close()`` flushes, then stops. A sync sender still open at interpreter exit is closed
  then, waiting at most ``exit_timeout`` seconds. An async sender must be closed with
  ``await aclose()`` (nothing can await at exit; one still holding events then logs how
  many were lost).
- **fork.** In a child the queue inherited from the parent is dropped (the parent sends its
  own copy), counters start at zero, and the child's first event starts its own thread
  and connections; the parent's are never touched. Keys made in the child never repeat
  the parent's.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import httpx

from promptline_sdk._backoff import Backoff
from promptline_sdk._engine import BATCH_PATH, MAX_BATCH_EVENTS, Batch, Engine, EventStats
from promptline_sdk._keys import KEYS

__all__ = ["MAX_BATCH_EVENTS", "AsyncEventSender", "EventSender", "EventStats"]

logger = logging.getLogger("promptline_sdk.events")

USER_AGENT = "promptline-sdk-python"

_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Senders not yet closed: flushed at exit, emptied in a forked child."""


TransportT = TypeVar("TransportT")
SleepT = TypeVar("SleepT")


class _Sender(Engine, Generic[TransportT, SleepT]):
    """The options both senders take."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: TransportT | None = None,
        max_queue: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        max_batch_bytes: int = 1_000_000,
        retry_base: float = 0.5,
        retry_cap: float = 30.0,
        max_retry_after: float = 3600.0,
        exit_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: SleepT | None = None,
    ) -> None:
        """``transport`` replaces httpx's (tests pass a ``MockTransport``; after ``fork()``
        the child uses the same object, so pass one that is safe to share, or none).
        ``exit_timeout`` bounds the sync sender's flush at interpreter exit. ``clock`` and
        ``sleep`` replace the waits before a retry (tests)."""
        self._base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._transport = transport
        self._timeout = timeout
        self._exit_timeout = exit_timeout
        self._sleep = sleep
        super().__init__(
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_batch_bytes=max_batch_bytes,
            max_retry_after=max_retry_after,
            backoff=Backoff(retry_base, retry_cap),
            clock=clock,
        )
        _LIVE.add(self)


class EventSender(_Sender[httpx.BaseTransport, Callable[[float], None]]):
    """Send events from a daemon thread (started by the first event)."""

    def _reset_state(self) -> None:
        super()._reset_state()
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._halted = False
        self._client: httpx.Client | None = None  # the parent's, after fork: never used

    # The caller's side -----------------------------------------------------------------

    def _ring(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _idle_driver(self) -> bool:
        return self._thread is None

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="promptline-events", daemon=True)
            self._thread = thread
            thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Send every event queued before this call and wait until each is settled.

        Settled is accepted or dropped (counted in ``stats``). Returns False if ``timeout``
        seconds passed first (the events stay queued: the edge may be down).
        """
        target = next(KEYS.counter)
        with self._cond:
            if self._done(target):
                return True
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
        if self._thread is None:
            self._start()
        with self._cond:
            return self._cond.wait_for(lambda: self._done(target), timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (waiting at most ``timeout``), then stop; later events are dropped as
        ``closed``. Returns whether everything was delivered."""
        delivered = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._halted = not delivered  # stop even though the edge has not taken all
            self._max_queue = 0
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        _LIVE.discard(self)
        return delivered

    def __enter__(self) -> EventSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The sender's side -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    if not self._step():
                        break
                except Exception:  # the thread must outlive any surprise; the events stay
                    logger.exception("promptline events: the sender failed; going on")
                    with self._cond:
                        self._cond.wait(self._flush_interval)
        finally:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    def _step(self) -> bool:
        """One wait or one batch; False once stopped (and nothing is left to send)."""
        with self._cond:
            now = self._clock()
            if self._stopping and (self._halted or self._done(next(KEYS.counter))):
                return False
            delay, backoff = self._delay(now)
            if delay > 0 and (self._sleep is None or not backoff):
                self._cond.wait(delay)
                return True
            batch = None if delay > 0 else self._take(now)
        if self._sleep is not None and delay > 0:
            self._sleep(delay)
            return True
        if batch is not None:
            self._send(batch)
        return True

    def _send(self, batch: Batch) -> None:
        try:
            response = self._http().post(BATCH_PATH, content=batch.body)
        except httpx.HTTPError as error:
            with self._cond:
                self._settle_failure(batch, self._clock(), None, type(error).__name__)
        except Exception:  # the thread must outlive any surprise; the events stay
            logger.exception("promptline events: sending a batch failed")
            with self._cond:
                self._settle_failure(batch, self._clock(), None, "unexpected error")
        else:
            with self._cond:
                self._settle(
                    batch,
                    self._clock(),
                    response.status_code,
                    response.headers.get("Retry-After"),
                    response.content,
                )
        with self._cond:
            self._cond.notify_all()

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._base_url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
            )
        return self._client


class AsyncEventSender(_Sender[httpx.AsyncBaseTransport, Callable[[float], Awaitable[None]]]):
    """Send events from a task on the running event loop (started by the first event).

    Call its methods from the loop's thread. Close it with ``await aclose()``.
    """

    def _reset_state(self) -> None:
        super()._reset_state()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def _ring(self) -> None:
        self._wake.set()

    def _idle_driver(self) -> bool:
        task = self._task
        return task is None or task.done()  # done: its loop ended; the next loop sends

    def _start(self) -> None:
        if not self._idle_driver():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop here: the first call on a loop (or flush) starts it
            return
        if self._task is not None:  # its loop has ended: start afresh on this one
            self._wake, self._changed, self._client = asyncio.Event(), asyncio.Event(), None
        self._task = loop.create_task(self._run(), name="promptline-events")

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """As ``EventSender.flush`` (a timeout answers False; cancelling would raise)."""
        target = next(KEYS.counter)
        if self._done(target):
            return True
        self._flush_target = max(self._flush_target, target)
        self._start()
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while not self._done(target):
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """As ``EventSender.close``: a bounded close must stop the task itself."""
        delivered = await self.flush(timeout)
        self._stopping = True
        self._max_queue = 0
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            if not delivered:  # stop even though the edge has not taken all
                task.cancel()
            await asyncio.wait({task}, timeout=timeout)
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        await self._close_client()
        _LIVE.discard(self)
        return delivered

    async def close(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """The same as ``aclose``."""
        return await self.aclose(timeout)

    async def __aenter__(self) -> AsyncEventSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    if not await self._step():
                        break
                except Exception:  # the task must outlive any surprise; the events stay
                    logger.exception("promptline events: the sender failed; going on")
                    await asyncio.sleep(self._flush_interval)
        finally:
            await self._close_client()

    async def _step(self) -> bool:
        self._wake.clear()
        now = self._clock()
        if self._stopping and self._done(next(KEYS.counter)):
            return False
        delay, backoff = self._delay(now)
        if delay > 0:
            if self._sleep is not None and backoff:
                await self._sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            return True
        batch = self._take(now)
        if batch is not None:
            await self._send(batch)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return True

    async def _send(self, batch: Batch) -> None:
        try:
            response = await self._http().post(BATCH_PATH, content=batch.body)
        except httpx.HTTPError as error:
            self._settle_failure(batch, self._clock(), None, type(error).__name__)
        except Exception:  # the task must outlive any surprise; the events stay
            logger.exception("promptline events: sending a batch failed")
            self._settle_failure(batch, self._clock(), None, "unexpected error")
        else:
            self._settle(
                batch,
                self._clock(),
                response.status_code,
                response.headers.get("Retry-After"),
                response.content,
            )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
            )
        return self._client

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _after_fork_in_child() -> None:
    """Drop what the parent queued (the parent sends it) and its thread and connections."""
    for sender in list(_LIVE):
        sender._reset_state()


def _at_exit() -> None:
    """Close the sync senders still open, each waiting at most its ``exit_timeout``."""
    for sender in list(_LIVE):
        if isinstance(sender, EventSender):
            if not sender.close(sender._exit_timeout):
                logger.warning(
                    "promptline events: %d events not delivered at exit", sender.stats.queued
                )
        elif sender._outstanding():
            logger.warning(
                "promptline events: %d events lost at exit (close AsyncEventSender with aclose)",
                sender._outstanding(),
            )


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
