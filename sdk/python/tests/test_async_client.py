"""The asynchronous client against a fake server: the same behaviour as the synchronous one."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_server import BASE_URL, KEY, FakeServer, async_wait_until, make_config

from promptline_sdk import AsyncClient, ResolveError


def client_for(server: FakeServer, **options: object) -> AsyncClient:
    settings: dict[str, object] = {"startup_timeout": 5.0, "transport": server.async_transport()}
    settings.update(options)
    return AsyncClient(BASE_URL, KEY, **settings)  # type: ignore[arg-type]


async def test_resolves_locally_after_start(server: FakeServer) -> None:
    async with client_for(server, stream=False) as client:
        before = len(server.requests)
        answer = client.resolve("support-bot", "usr_1", {"company": "Acme"})
        assert len(server.requests) == before
        assert (answer.source, answer.version, answer.content) == ("config", "v1", "v1 for Acme.")
        assert client.config_etag == '"e1"'


async def test_startup_timeout_serves_the_fallback_then_the_config(server: FakeServer) -> None:
    server.hang.set()
    async with client_for(server, startup_timeout=0.2, stream=False, poll_interval=0.05) as client:
        answer = client.resolve("support-bot", "u", fallback="You are helpful.")
        assert answer.source == "fallback" and answer.content == "You are helpful."
        assert answer.error is not None and answer.error.code == "unavailable"
        server.hang.clear()
        await async_wait_until(lambda: client.config is not None)
        assert client.resolve("support-bot", "u", fallback="x").source == "config"


async def test_the_disk_cache_serves_when_the_server_is_down(
    server: FakeServer, tmp_path: Path
) -> None:
    cache = tmp_path / "promptline.json"
    async with client_for(server, stream=False, cache_path=cache) as client:
        assert client.resolve("support-bot", "u").ok
    server.up = False
    down = client_for(server, stream=False, cache_path=cache, startup_timeout=0.3, events=False)
    async with down as client:
        answer = client.resolve("support-bot", "u", {"company": "A"})
        assert answer.source == "disk" and answer.content == "v1 for A."


async def test_the_stream_and_polling_pick_up_deploys(server: FakeServer) -> None:
    async with client_for(server, poll_interval=3600) as client:
        await async_wait_until(lambda: server.streams_opened > 0)
        server.publish(make_config('"e2"', serve=2))
        await async_wait_until(lambda: client.config_etag == '"e2"')
        assert client.resolve("support-bot", "u").version == "v2"
    async with client_for(server, stream=False, poll_interval=0.02) as client:
        server.publish(make_config('"e3"', serve=1))
        await async_wait_until(lambda: client.config_etag == '"e3"')
        await async_wait_until(lambda: 304 in server.config_answers)
        assert client.resolve("support-bot", "u").version == "v1"


async def test_keeps_answering_when_the_server_goes_away(server: FakeServer) -> None:
    async with client_for(server, poll_interval=0.02, events=False) as client:
        server.up = False
        count = len(server.requests)
        await async_wait_until(lambda: len(server.requests) > count + 3)
        assert client.resolve("support-bot", "u", {"company": "A"}).content == "v1 for A."


async def test_raise_errors_and_events(server: FakeServer) -> None:
    async with client_for(server, stream=False, raise_errors=True) as client:
        with pytest.raises(ResolveError):
            client.resolve("nope", "u")
        for _ in range(3):
            client.resolve("support-bot", "usr_a", {"company": "A"})
        client.signal("support-bot", "positive", user_id="usr_a")
        assert await client.flush(10.0)
    assert [e["user_id"] for e in server.exposures()] == ["usr_a"]
    signal = next(e for e in server.events if e["type"] == "signal")
    assert signal["metadata"] == {"version": 1}


async def test_a_client_not_started_starts_at_its_first_resolve(server: FakeServer) -> None:
    client = client_for(server, stream=False, events=False)
    try:
        first = client.resolve("support-bot", "u", fallback="F")
        assert first.source == "fallback"  # no waiting on the resolve path
        await async_wait_until(lambda: client.resolve("support-bot", "u").source == "config")
    finally:
        await client.aclose()
