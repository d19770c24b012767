"""The asynchronous client: the synchronous client's shape, its refresh as asyncio tasks.

``resolve`` is a plain method here too: it does no I/O, so it needs no ``await``. Start the
client with ``async with AsyncClient(...)`` or ``await client.start()`` (which waits at most
``startup_timeout`` for the first configuration); a client not started starts its tasks
at its first ``resolve`` on a running loop, without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from promptline_sdk import _core
from promptline_sdk._backoff import Backoff
from promptline_sdk._core import Core, Resolution
from promptline_sdk.events import AsyncEventSender
from promptline_sdk.sse import EventParser

log = logging.getLogger("promptline_sdk")


class AsyncClient(Core):
    """Resolve prompts locally and report events, on an asyncio loop; see the SDK README."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        startup_timeout: float = 2.0,
        poll_interval: float = 30.0,
        stream: bool = True,
        cache_path: str | os.PathLike[str] | None = None,
        raise_errors: bool = False,
        request_timeout: float = 10.0,
        stream_read_timeout: float = 45.0,
        events: bool = True,
        max_remembered: int = 100_000,
        transport: httpx.AsyncBaseTransport | None = None,
        event_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            _core.options(
                base_url,
                api_key,
                startup_timeout=startup_timeout,
                poll_interval=poll_interval,
                stream=stream,
                cache_path=cache_path,
                raise_errors=raise_errors,
                request_timeout=request_timeout,
                stream_read_timeout=stream_read_timeout,
                events=events,
                max_remembered=max_remembered,
            )
        )
        self._transport = transport
        self._event_options = dict(event_options or {})
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self._first: asyncio.Event | None = None
        self._fetching: asyncio.Lock | None = None
        self._sender = self._event_sender() if events else None
        self._events = self._sender

    def _event_sender(self) -> AsyncEventSender:
        return AsyncEventSender(
            self.options.base_url,
            self.options.api_key,
            transport=self._transport,
            **self._event_options,
        )

    # --- the background ---------------------------------------------------------------

    async def start(self) -> None:
        """Start refreshing on the running loop; wait at most ``startup_timeout`` for the
        first configuration (without it, the disk cache or fallbacks are served)."""
        first = self._launch()
        if first is None:
            return
        try:
            await asyncio.wait_for(first.wait(), self.options.startup_timeout)
        except TimeoutError:
            log.warning(
                "promptline: no configuration within %.1f s; serving %s",
                self.options.startup_timeout,
                "the disk cache" if self.config is not None else "fallbacks",
            )

    def _launch(self) -> asyncio.Event | None:
        """Start the tasks if not running (on the running loop); the first-fetch event."""
        if self._closed:
            return None
        if self._tasks and not self._forked:
            return self._first
        self._forked = False
        opts = self.options
        self._http = httpx.AsyncClient(
            base_url=opts.base_url,
            headers=_core.headers(opts.api_key),
            timeout=opts.request_timeout,
            transport=self._transport,
        )
        self._first = asyncio.Event()
        self._fetching = asyncio.Lock()
        self._tasks = [asyncio.create_task(self._poll(), name="promptline-poll")]
        if opts.stream:
            self._tasks.append(asyncio.create_task(self._listen(), name="promptline-stream"))
        return self._first

    async def refresh(self) -> bool:
        """Fetch the configuration now (``If-None-Match``); whether the server answered."""
        http, fetching = self._http, self._fetching
        if http is None or fetching is None:
            return False
        async with fetching:
            config = self.config
            request_headers = {}
            if config is not None and config.etag:
                request_headers["If-None-Match"] = config.etag
            try:
                response = await http.get(_core.CONFIG_PATH, headers=request_headers)
            except Exception as error:  # httpx's errors, or a client closed meanwhile
                log.debug("promptline: GET %s failed: %s", _core.CONFIG_PATH, error)
                return False
            etag = response.headers.get("etag")
            if self._accept(response.status_code, etag, response.content):
                await asyncio.to_thread(self._save)
            return response.status_code in (200, 304)

    async def _poll(self) -> None:
        backoff = Backoff(base=0.5, cap=self.options.poll_interval)
        failures = 0
        while True:
            answered = await self.refresh()
            if self._first is not None:
                self._first.set()
            failures = 0 if answered else failures + 1
            await asyncio.sleep(self.options.poll_interval if answered else backoff.delay(failures))

    async def _listen(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        failures = 0
        opts = self.options
        timeout = httpx.Timeout(opts.request_timeout, read=opts.stream_read_timeout)
        while self._http is not None:
            retry_after: float | None = None
            try:
                async with self._http.stream(
                    "GET",
                    _core.STREAM_PATH,
                    headers={"Accept": "text/event-stream"},
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        retry_after = _core.stream_refused_wait(
                            response.status_code, response.headers.get("retry-after")
                        )
                    else:
                        failures = 0
                        parser = EventParser()
                        async for line in response.aiter_lines():
                            if self._announced(parser.feed(line)):
                                await self.refresh()
            except Exception as error:  # the background task must outlive any failure
                log.debug("promptline: the stream broke: %s", error)
            failures += 1
            await asyncio.sleep(backoff.delay(failures, retry_after))

    # --- the public API ---------------------------------------------------------------

    def resolve(
        self,
        prompt: str,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        *,
        strict: bool = False,
        fallback: str | None = None,
    ) -> Resolution:
        """The version ``user_id`` gets of ``prompt``, from the local configuration.

        Not a coroutine: no I/O. Problems are answers (``error`` set), as in
        :meth:`promptline_sdk.Client.resolve`.
        """
        if self._forked or not self._tasks:
            self._launch_if_loop()
        return self._resolve(prompt, user_id, context, strict, fallback)

    def _launch_if_loop(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._launch()

    @property
    def events(self) -> AsyncEventSender | None:
        """The event sender (None when the client was made with ``events=False``)."""
        return self._sender

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Send every queued event now (see the event sender's ``flush``)."""
        if self._sender is None:
            return True
        return await self._sender.flush(timeout)

    async def aclose(self, timeout: float | None = 10.0) -> None:  # noqa: ASYNC109
        """Stop refreshing; flush the events (waiting at most ``timeout`` seconds, None:
        until delivered) and stop the sender. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.aclose()
        if self._sender is not None:
            await self._sender.close(timeout)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
