"""The SDK's routes (issue 16), in seed 001's family: ``/v1/sdk/...``, a ``read`` key.

- ``GET /v1/sdk/config``: everything the key's project needs to resolve locally
  (``controlplane.sdk_config``; the algorithm is in docs/sdk.md, "The configuration"),
  with an ``ETag`` that only this project's content moves, and ``304`` for a matching
  ``If-None-Match``.
- ``GET /v1/sdk/stream``: server-sent events. ``retry: 2000`` and, at once,
  ``event: config`` with ``data: {"etag": "..."}``; then another ``config`` event whenever
  the project's ETag changes (each catalog snapshot the watcher swaps in, whichever
  process wrote, is checked: within one poll, 250 ms, of any deploy, rollback or version),
  and a ``: ping`` comment line every ``sdk_stream_heartbeat_seconds``. The key is checked
  again on each snapshot, so a revoked key's stream ends with the reload that drops it.
  ``?once=true`` ends the stream after its first event (for tools and the contract
  tests; SDKs keep the stream open).

Both count against the ``GET /sdk`` limit class (``ratelimit``), each in its own bucket.
A process holds at most ``sdk_streams_per_project`` open streams per project (429 past
it), so no tenant can take every connection. Streams never hold up shutdown: the app's
``on_shutdown`` (which aiohttp runs before it waits for handlers to finish) ends every
open stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import orjson
from aiohttp import hdrs, web

from controlplane.api.answer_models import SdkConfig
from controlplane.api.auth import authenticate
from controlplane.api.context import admit
from controlplane.api.presenters import now_iso
from controlplane.api.ratelimit import Endpoint, LimitClass
from controlplane.catalog import Catalog, CatalogWatcher
from controlplane.sdk_config import ConfigCache
from controlplane.store.models import Scope
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.operations import Answer, Operation, Param
from promptline.http.routes import served_routes
from promptline.settings import Settings

SDK_CONFIG = Endpoint("GET /v1/sdk/config", LimitClass.SDK)
SDK_STREAM = Endpoint("GET /v1/sdk/stream", LimitClass.SDK)

RETRY_MILLISECONDS: Final = 2000
"""What the stream tells EventSource clients to wait before reconnecting."""
STREAMS_FULL_RETRY_SECONDS: Final = 5.0
"""Retry-After of a stream refused because its project holds too many."""
EVENT_STREAM: Final = "text/event-stream"
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"", "0", "false"})


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """The stream's settings (``promptline.server`` sets them from ``Settings``)."""

    heartbeat_seconds: float = 15.0
    per_project: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> StreamPolicy:
        """From ``promptline.settings.Settings``."""
        return cls(settings.sdk_stream_heartbeat_seconds, settings.sdk_streams_per_project)


SDK_STREAM_POLICY = web.AppKey("sdk_stream_policy", StreamPolicy)
"""The app's stream settings; an app that sets none has the defaults."""
DEFAULT_POLICY = StreamPolicy()


@dataclass(slots=True, eq=False)
class _Stream:
    """One open stream: woken on each catalog snapshot, and once more at shutdown."""

    project_id: uuid.UUID
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SdkHub:
    """An app's SDK state: configurations per project and snapshot, and the open streams."""

    def __init__(self) -> None:
        self.configs = ConfigCache()
        self.closing = False
        self._streams: set[_Stream] = set()
        self._per_project: dict[uuid.UUID, int] = {}
        self._detach: Callable[[], None] | None = None

    def _changed(self, _catalog: Catalog) -> None:
        for stream in self._streams:
            stream.wake.set()

    @contextlib.contextmanager
    def open(self, watcher: CatalogWatcher, project_id: uuid.UUID, limit: int) -> Iterator[_Stream]:
        """Hold a stream for the project (429 past ``limit``) while the block runs."""
        if self._per_project.get(project_id, 0) >= limit:
            raise ApiError(
                ErrorKind.RATE_LIMITED,
                f"This project already holds {limit} open SDK streams on this server; "
                "close one, or poll GET /v1/sdk/config.",
                retry_after=STREAMS_FULL_RETRY_SECONDS,
            )
        if self._detach is None and not self.closing:
            self._detach = watcher.on_change(self._changed)
        stream = _Stream(project_id)
        self._streams.add(stream)
        self._per_project[project_id] = self._per_project.get(project_id, 0) + 1
        try:
            yield stream
        finally:
            self._streams.discard(stream)
            left = self._per_project[project_id] - 1
            if left:
                self._per_project[project_id] = left
            else:
                del self._per_project[project_id]

    async def shutdown(self, _app: web.Application) -> None:
        """End every open stream now (``app.on_shutdown``), and refuse new ones."""
        self.closing = True
        for stream in self._streams:
            stream.wake.set()
        if self._detach is not None:
            self._detach()
            self._detach = None

    @property
    def open_streams(self) -> int:
        """Streams open now (for tests and metrics)."""
        return len(self._streams)


SDK_HUB = web.AppKey("sdk_hub", SdkHub)


async def get_config(request: web.Request) -> web.StreamResponse:
    """The project's configuration, or 304 when ``If-None-Match`` names its ETag."""
    caller = await admit(request, Scope.READ, SDK_CONFIG)
    config = request.app[SDK_HUB].configs.get(caller.catalog, caller.principal.project_id)
    headers = {hdrs.ETAG: config.etag, hdrs.CACHE_CONTROL: "no-cache"}
    if _matches(request.headers.get(hdrs.IF_NONE_MATCH), config.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=orjson.dumps(config.body(now_iso())),
        content_type="application/json",
        headers=headers,
    )


def _matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 says)."""
    if header is None:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _once(request: web.Request) -> bool:
    value = request.query.get("once", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(ErrorKind.INVALID_REQUEST, "once: must be true or false.", field="once")


def _event(etag: str) -> bytes:
    return b"event: config\ndata: " + orjson.dumps({"etag": etag}) + b"\n\n"


async def get_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the project's ETag at once and after each change; pings."""
    caller = await admit(request, Scope.READ, SDK_STREAM)
    once = _once(request)
    hub = request.app[SDK_HUB]
    policy = request.app.get(SDK_STREAM_POLICY, DEFAULT_POLICY)
    watcher = caller.plane.catalog
    project_id = caller.principal.project_id
    with hub.open(watcher, project_id, policy.per_project) as stream:
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: EVENT_STREAM,
                hdrs.CACHE_CONTROL: "no-cache",
                "X-Accel-Buffering": "no",  # proxies such as nginx: do not buffer events
            }
        )
        await response.prepare(request)
        if request.method == hdrs.METH_HEAD:  # the headers only, and no body to wait on
            return response
        with contextlib.suppress(ConnectionError):
            await _serve(request, response, watcher, stream, policy.heartbeat_seconds, once)
    return response


async def _serve(
    request: web.Request,
    response: web.StreamResponse,
    watcher: CatalogWatcher,
    stream: _Stream,
    heartbeat: float,
    once: bool,
) -> None:
    """Write events until shutdown, a revoked key, ``once`` or a client gone (raises
    ConnectionError). Nothing here may raise ApiError: the answer has started."""
    hub = request.app[SDK_HUB]
    await response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
    sent: str | None = None
    written = time.monotonic()
    while not hub.closing:
        stream.wake.clear()
        catalog = watcher.current
        try:
            authenticate(request, catalog, Scope.READ)
        except ApiError:
            return  # revoked (or its scope taken away): the stream ends
        etag = hub.configs.get(catalog, stream.project_id).etag
        if etag != sent:
            await response.write(_event(etag))
            sent, written = etag, time.monotonic()
            if once:
                return
        wait = heartbeat - (time.monotonic() - written)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.wake.wait(), wait)
        if not hub.closing and time.monotonic() - written >= heartbeat:
            await response.write(b": ping\n\n")
            written = time.monotonic()


TAG = "sdk"
_CONFIG_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "config"},
        "data": {
            "type": "string",
            "description": 'JSON: `{"etag": "<the ETag of GET /v1/sdk/config>"}`.',
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["etag"],
                "properties": {"etag": {"type": "string"}},
            },
        },
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
"""One server-sent event as an OpenAPI 3.1 document describes it (a stream's schema is that
of each event: ``event``, ``data``, and ``id``/``retry`` when the block has them)."""
CONFIG_OP = Operation(
    summary="The project's configuration for SDKs",
    description="Everything the key's project needs to resolve locally, exactly as "
    "`POST /v1/resolve` would: per prompt that can serve (by name), the deployment in force "
    "(`traffic` and `rules` as stored, `traffic_rule`, `deployment_id`) and the versions it "
    "can serve (by number) with their content; and the hashing parameters. The `ETag` "
    "header is a hash of this project's content only; send it back in `If-None-Match` to "
    "get `304` with no body while nothing changed. The algorithm is in docs/sdk.md.",
    tag=TAG,
    scope=Scope.READ,
    answers={
        200: Answer(
            "The configuration.",
            SdkConfig,
            headers={"ETag": "The configuration's entity tag.", "Cache-Control": "`no-cache`."},
        ),
        304: Answer("`If-None-Match` names the current ETag: no body."),
    },
    parameters=(
        Param(
            "If-None-Match",
            "An ETag from an earlier answer (or several, comma-separated).",
            location="header",
        ),
    ),
)
STREAM_OP = Operation(
    summary="Server-sent events: the project's configuration changed",
    description="`text/event-stream`. First `retry: 2000`, then at once `event: config` with "
    '`data: {"etag": "..."}` (the ETag of `GET /v1/sdk/config`), and another `config` event '
    "within a second of every change of the project's configuration (deploy, rollback, "
    "version, from any server process); a `: ping` comment line every "
    "`sdk_stream_heartbeat_seconds` (15 by default). The stream ends when the key is "
    "revoked and when the server shuts down; reconnect and fetch the configuration again. "
    "A project holds at most `sdk_streams_per_project` streams per server process (429).",
    tag=TAG,
    scope=Scope.READ,
    answers={
        200: Answer(
            "The event stream; the schema is that of each event (`retry` and comment lines "
            "carry no data, so are no events).",
            schema=_CONFIG_EVENT,
            content_type=EVENT_STREAM,
            headers={"Cache-Control": "`no-cache`."},
        )
    },
    errors=(ErrorKind.INVALID_REQUEST,),
    parameters=(
        Param(
            "once",
            "`true` ends the stream after its first event (for tools and tests; SDKs leave "
            "it out).",
            schema={"type": "string", "enum": ["true", "false", "1", "0"]},
        ),
    ),
)


def add_routes(app: web.Application) -> None:
    """Register the SDK routes, and end their streams on the app's shutdown."""
    hub = app[SDK_HUB] = SdkHub()
    app.on_shutdown.append(hub.shutdown)
    router = served_routes(app)
    router.add_get("/v1/sdk/config", get_config, CONFIG_OP)
    router.add_get("/v1/sdk/stream", get_stream, STREAM_OP)
