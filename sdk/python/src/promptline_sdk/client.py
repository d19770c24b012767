"""The synchronous client: local resolve, a daemon thread keeping the configuration fresh.

Two daemon threads refresh in the background: one holds the server-sent events stream
(``GET /v1/sdk/stream``) and refetches the configuration when its ETag changes; the other
polls ``GET /v1/sdk/config`` with ``If-None-Match`` every ``poll_interval`` as a
backstop (and, until a first configuration arrives, sooner, with backoff). After
``os.fork()`` a child has no threads: the first call in the child starts them again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from promptline_sdk import _core
from promptline_sdk._backoff import Backoff
from promptline_sdk._core import Core, Resolution
from promptline_sdk.events import EventSender
from promptline_sdk.sse import EventParser

log = logging.getLogger("promptline_sdk")


class Client(Core):
    """Resolve prompts locally and report events; see the SDK README.

    ``Client(base_url, api_key)`` fetches the project's configuration, waiting at most
    ``startup_timeout`` seconds; without it, it serves the disk cache (``cache_path``) or
    each call's ``fallback``. ``resolve`` never makes a network call.
    """

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
        transport: httpx.BaseTransport | None = None,
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
        self._sender = self._event_sender() if events else None
        self._events = self._sender
        self._first = threading.Event()
        self._start()
        if not self._first.wait(startup_timeout):
            log.warning(
                "promptline: no configuration within %.1f s; serving %s",
                startup_timeout,
                "the disk cache" if self.config is not None else "fallbacks",
            )

    def _event_sender(self) -> EventSender:
        return EventSender(
            self.options.base_url,
            self.options.api_key,
            transport=self._transport,
            **self._event_options,
        )

    # --- the background ---------------------------------------------------------------

    def _start(self) -> None:
        """A fresh HTTP client and threads (at start, and in a child after ``fork()``)."""
        opts = self.options
        self._http = httpx.Client(
            base_url=opts.base_url,
            headers=_core.headers(opts.api_key),
            timeout=opts.request_timeout,
            transport=self._transport,
        )
        self._stop = threading.Event()
        self._fetching = threading.Lock()
        self._threads = [threading.Thread(target=self._poll, name="promptline-poll", daemon=True)]
        if opts.stream:
            self._threads.append(
                threading.Thread(target=self._listen, name="promptline-stream", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def _restart_after_fork(self) -> None:
        self._forked = False
        if self._closed:
            return
        self._first = threading.Event()
        self._first.set()
        self._start()  # the parent's HTTP client and sockets are left alone

    def refresh(self) -> bool:
        """Fetch the configuration now (``If-None-Match``); whether the server answered."""
        with self._fetching:
            config = self.config
            request_headers = {}
            if config is not None and config.etag:
                request_headers["If-None-Match"] = config.etag
            try:
                response = self._http.get(_core.CONFIG_PATH, headers=request_headers)
            except Exception as error:  # httpx's errors, or a client closed meanwhile
                log.debug("promptline: GET %s failed: %s", _core.CONFIG_PATH, error)
                return False
            save = self._accept(
                response.status_code, response.headers.get("etag"), response.content
            )
            if save:
                self._save()
            return response.status_code in (200, 304)

    def _poll(self) -> None:
        backoff = Backoff(base=0.5, cap=self.options.poll_interval)
        failures = 0
        while not self._stop.is_set():
            answered = self.refresh()
            self._first.set()
            failures = 0 if answered else failures + 1
            wait = self.options.poll_interval if answered else backoff.delay(failures)
            if self._stop.wait(wait):
                return

    def _listen(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        failures = 0
        opts = self.options
        timeout = httpx.Timeout(opts.request_timeout, read=opts.stream_read_timeout)
        while not self._stop.is_set():
            retry_after: float | None = None
            try:
                with self._http.stream(
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
                        for line in response.iter_lines():
                            if self._stop.is_set():
                                return
                            if self._announced(parser.feed(line)):
                                self.refresh()
            except Exception as error:  # the background thread must outlive any failure
                log.debug("promptline: the stream broke: %s", error)
            failures += 1
            if self._stop.wait(backoff.delay(failures, retry_after)):
                return

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

        No network call. A problem (unknown prompt, a strict miss, no configuration) is a
        Resolution with ``error`` set (and the ``fallback`` content if given), or raises
        :class:`~promptline_sdk.ResolveError` when the client has ``raise_errors``.
        """
        if self._forked:
            self._restart_after_fork()
        return self._resolve(prompt, user_id, context, strict, fallback)

    @property
    def events(self) -> EventSender | None:
        """The event sender (None when the client was made with ``events=False``)."""
        return self._sender

    def flush(self, timeout: float | None = None) -> bool:
        """Send every queued event now (see the event sender's ``flush``)."""
        if self._sender is None:
            return True
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop refreshing; flush the events (waiting at most ``timeout`` seconds, None:
        until delivered) and stop the sender. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._http.close()  # ends a stream read blocked in another thread
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        if self._sender is not None:
            self._sender.close(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
