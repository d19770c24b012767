"""``GET /v1/sdk/stream`` (issue 16): server-sent events of a project's configuration.

The app is served by a real ``TestServer`` and read by a plain aiohttp client, so that the
server's shutdown can be observed from outside while a stream is open. Waits are bounded
(``WAIT``) and no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from blockbuster import BlockBuster

from controlplane import api
from controlplane.api.sdk import SDK_HUB, SDK_STREAM_POLICY, StreamPolicy
from controlplane.catalog import Catalog, CatalogWatcher
from controlplane.keys import digest
from controlplane.store.engine import create_engine, session_factory
from controlplane.tenancy import ALL_SCOPES, create_api_key, revoke_api_key
from promptline.http.errors import error_middleware
from promptline.http.families import dialect_for
from tests.controlplane.test_api_harness import Api, Tenant, allow_pg_connect_probes, open_api

WAIT = 15.0
"""The longest any test waits for an event; the stream answers within about a second."""
STREAM = "/v1/sdk/stream"


@dataclass
class Served:
    """A running app (over the module's store) with a real listening server."""

    server: TestServer
    watcher: CatalogWatcher
    session: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@contextlib.asynccontextmanager
async def _serve(store_url: str, policy: StreamPolicy) -> AsyncIterator[Served]:
    engine = create_engine(store_url)
    watcher = CatalogWatcher(session_factory(engine))
    limiter = await api.RateLimiter.open()
    server: TestServer | None = None
    try:
        await watcher.start()
        app = web.Application(middlewares=[error_middleware(dialect_for)])
        api.add_routes(app)
        app[api.CONTROL_PLANE] = api.ControlPlane(catalog=watcher, limiter=limiter)
        app[SDK_STREAM_POLICY] = policy
        server = TestServer(app)
        await server.start_server()
        async with aiohttp.ClientSession() as session:
            yield Served(server, watcher, session)
    finally:
        if server is not None:
            await server.close()
        await limiter.close()
        await watcher.stop()
        await engine.dispose()


@pytest.fixture
async def served(store_url: str, blockbuster: BlockBuster) -> AsyncIterator[Served]:
    allow_pg_connect_probes(blockbuster)
    async with _serve(store_url, StreamPolicy(heartbeat_seconds=0.2, per_project=2)) as app:
        yield app


@pytest.fixture
async def writer(store_url: str, blockbuster: BlockBuster) -> AsyncIterator[Api]:
    """The control-plane routes in another app (another "process") over the same store."""
    allow_pg_connect_probes(blockbuster)
    async with open_api(store_url) as harness:
        yield harness


class Events:
    """Reads an event stream: each ``next`` is one event block or one comment line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> dict[str, str] | None:
        """The next block's fields (a comment as ``{"comment": ...}``); None at the end."""
        fields: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), WAIT)
            if not line:
                return fields or None
            text = line.decode().rstrip("\n")
            if not text:
                if fields:
                    return fields
                continue
            name, _, value = text.partition(":")
            if not name:
                return {"comment": value.strip()}
            fields[name] = value.removeprefix(" ")

    async def config(self) -> str:
        """The ETag of the next ``config`` event, skipping pings."""
        while True:
            event = await self.next()
            assert event is not None, "the stream ended"
            if event.get("event") == "config":
                etag: str = orjson.loads(event["data"])["etag"]
                return etag

    async def end(self) -> None:
        """Read until the stream ends (pings and events are skipped)."""
        while await self.next() is not None:
            pass


@contextlib.asynccontextmanager
async def _stream(served: Served, key: str, query: str = "") -> AsyncIterator[Events]:
    headers = {"Authorization": f"Bearer {key}"}
    async with served.session.get(served.url(STREAM + query), headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        yield Events(response)


async def _etag(served: Served, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    async with served.session.get(served.url("/v1/sdk/config"), headers=headers) as response:
        assert response.status == 200, await response.text()
        return response.headers["ETag"]


async def _deploy(harness: Api, tenant: Tenant, prompt: str, weights: list[int]) -> None:
    traffic = [{"version": f"v{n + 1}", "weight": w} for n, w in enumerate(weights)]
    reply = await harness.call(
        "POST", f"/v1/prompts/{prompt}/deploy", tenant.key, json={"traffic": traffic}
    )
    assert reply.status == 201, reply.body


async def _tenant(writer: Api, served: Served, *contents: str) -> Tenant:
    tenant = await writer.tenant()
    await writer.prompt(tenant, "bot", *contents)
    await served.watcher.refresh()
    return tenant


async def test_the_first_event_is_sent_at_once_with_retry(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one", "two")
    async with _stream(served, tenant.key) as events:
        first = await events.next()
        assert first == {"retry": "2000"}
        assert await events.config() == await _etag(served, tenant.key)


async def test_a_deploy_in_another_process_reaches_the_stream(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one", "two")
    async with _stream(served, tenant.key) as events:
        before = await events.config()
        await _deploy(writer, tenant, "bot", [50, 50])  # written through the other app
        after = await events.config()  # the served app's watcher polls the store
        assert after != before
        assert after == await _etag(served, tenant.key)
        theirs = await writer.call("GET", "/v1/sdk/config", tenant.key)
        assert theirs.headers["ETag"] == after, "two processes, one content, one ETag"


async def test_a_deploy_through_the_route_and_a_rollback_reach_the_stream(
    served: Served, writer: Api
) -> None:
    tenant = await _tenant(writer, served, "one", "two")
    await _deploy(writer, tenant, "bot", [100, 0])  # what the rollback returns to
    await served.watcher.refresh()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with _stream(served, tenant.key) as events:
        etags = [await events.config()]
        for path, body in (
            ("deploy", {"traffic": [{"version": "v2", "weight": 100}]}),
            ("rollback", None),
        ):
            url = served.url(f"/v1/prompts/bot/{path}")
            async with served.session.post(url, json=body, headers=headers) as reply:
                assert reply.status in (200, 201), await reply.text()
            etags.append(await events.config())
        assert len(set(etags)) == 3
        assert etags[-1] == await _etag(served, tenant.key)


async def test_another_projects_deploy_sends_nothing(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one", "two")
    other = await _tenant(writer, served, "theirs", "theirs too")
    async with _stream(served, tenant.key) as events:
        await events.config()
        await _deploy(writer, other, "bot", [50, 50])
        await served.watcher.refresh()
        await _deploy(writer, tenant, "bot", [10, 90])
        mine = await events.config()  # the next event is this project's deploy
        assert mine == await _etag(served, tenant.key)


async def test_heartbeats_keep_an_idle_stream_alive(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one")
    async with _stream(served, tenant.key) as events:
        await events.config()
        for _ in range(3):
            assert await events.next() == {"comment": "ping"}


async def test_once_ends_the_stream_after_the_first_event(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one")
    async with _stream(served, tenant.key, "?once=true") as events:
        assert await events.config() == await _etag(served, tenant.key)
        assert await events.next() is None
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with served.session.get(served.url(STREAM + "?once=maybe"), headers=headers) as bad:
        assert bad.status == 400
    async with served.session.head(served.url(STREAM), headers=headers) as head:
        assert head.status == 200  # and ends: HEAD has no body to wait on
    assert served.server.app[SDK_HUB].open_streams == 0
    async with _stream(served, tenant.key, "?once=true") as after:  # the connection is sound
        await after.config()


async def test_a_revoked_keys_stream_ends(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one")
    async with writer.sessions() as session, session.begin():
        issued = await create_api_key(session, tenant.project_id, ALL_SCOPES, "sdk")
    await served.watcher.refresh()
    async with _stream(served, issued.secret) as events:
        await events.config()
        async with writer.sessions() as session, session.begin():
            await revoke_api_key(session, issued.key_id)
        await events.end()  # the served app's watcher drops the key on its next poll
    assert served.watcher.current.principal(digest(issued.secret)) is None


async def test_the_streams_of_a_project_are_limited(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one")
    other = await _tenant(writer, served, "theirs")
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with _stream(served, tenant.key) as first, _stream(served, tenant.key) as second:
        await first.config()
        await second.config()
        async with served.session.get(served.url(STREAM), headers=headers) as third:
            assert third.status == 429
            body: dict[str, Any] = await third.json()
            assert body["error"]["code"] == "rate_limited"
            assert float(third.headers["Retry-After"]) > 0
        async with _stream(served, other.key) as theirs:  # another project is not held up
            await theirs.config()
    async with _stream(served, tenant.key) as again:  # closed streams free their places
        await again.config()


async def test_a_client_that_leaves_frees_its_place(served: Served, writer: Api) -> None:
    tenant = await _tenant(writer, served, "one")
    hub = served.server.app[SDK_HUB]
    async with _stream(served, tenant.key) as events:
        await events.config()
        assert hub.open_streams == 1
        events.response.close()
    for _ in range(int(WAIT / 0.05)):  # the next heartbeat finds the connection gone
        if hub.open_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.open_streams == 0


async def test_the_stream_counts_against_the_sdk_limit(served: Served, writer: Api) -> None:
    tenant = await writer.tenant("free", {"GET /v1/sdk/stream": "1/minute"})
    await served.watcher.refresh()
    async with _stream(served, tenant.key, "?once=1") as events:
        await events.end()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with served.session.get(served.url(STREAM), headers=headers) as limited:
        assert limited.status == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert await _etag(served, tenant.key), "the config route has a bucket of its own"


async def test_shutdown_ends_open_streams_at_once(store_url: str, writer: Api) -> None:
    # A heartbeat far longer than the wait: only the shutdown can end these streams.
    async with _serve(store_url, StreamPolicy(heartbeat_seconds=3600, per_project=5)) as app:
        tenant = await _tenant(writer, app, "one")
        hub = app.server.app[SDK_HUB]
        async with _stream(app, tenant.key) as first, _stream(app, tenant.key) as second:
            await first.config()
            await second.config()
            assert hub.open_streams == 2
            closing = asyncio.create_task(app.server.close())
            await first.end()
            await second.end()
            # The runner waits up to 60 s for handlers; the streams let it go at once.
            await asyncio.wait_for(closing, WAIT)
        assert hub.open_streams == 0


async def test_the_watcher_tells_its_listeners_of_each_new_snapshot(
    served: Served, writer: Api, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def broken(_catalog: Catalog) -> None:
        raise RuntimeError("a listener's bug")

    remove_broken = served.watcher.on_change(broken)
    remove = served.watcher.on_change(lambda catalog: seen.append(catalog.revision))
    await served.watcher.refresh()
    assert seen == [], "no new snapshot, no call"
    tenant = await writer.tenant()
    await served.watcher.refresh()
    assert seen == [served.watcher.current.revision], "one call per snapshot, after the swap"
    assert "a catalog listener failed" in caplog.text, "a raising listener is logged..."
    remove()
    remove_broken()
    remove()  # removing twice is harmless
    await writer.prompt(tenant, "later", "x")
    await served.watcher.refresh()
    assert len(seen) == 1, "...and a removed one is not called"
