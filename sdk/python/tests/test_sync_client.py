"""The synchronous client against a fake server: startup, disk cache, refresh, errors, events."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fake_server import BASE_URL, KEY, FakeServer, make_config, wait_until

from promptline_sdk import Client, ResolveError


def client_for(server: FakeServer, **options: object) -> Client:
    settings: dict[str, object] = {"startup_timeout": 5.0, "transport": server.transport()}
    settings.update(options)
    return Client(BASE_URL, KEY, **settings)  # type: ignore[arg-type]


def test_resolves_locally_with_the_servers_fields(server: FakeServer) -> None:
    with client_for(server, stream=False) as client:
        before = len(server.requests)
        answer = client.resolve("support-bot", "usr_1", {"company": "Acme"})
        assert len(server.requests) == before  # no network call
        assert answer.ok and answer.source == "config"
        assert answer.content == "v1 for Acme."
        assert answer.to_dict() == {
            "prompt": "support-bot",
            "version": "v1",
            "content": "v1 for Acme.",
            "resolved_at": answer.resolved_at,
            "traffic_rule": "stable",
            "prompt_id": "prm_0193b2c4d5e67f0a8b9c0d1e2f3a4b5c",
            "prompt_uuid": "0193b2c4-d5e6-7f0a-8b9c-0d1e2f3a4b5c",
            "version_id": "ver_" + f"{1:032x}",
            "content_hash": "sha256:" + f"{1:064x}",
            "deployment_id": "dep_" + "d" * 32,
            "missing_variables": [],
        }
        assert answer.split and answer.config_age is not None and answer.config_age >= 0
        assert client.config_etag == '"e1"'


def test_startup_timeout_serves_the_fallback_then_the_config(server: FakeServer) -> None:
    server.hang.set()  # the server accepts but does not answer
    with client_for(server, startup_timeout=0.2, stream=False, poll_interval=0.05) as client:
        answer = client.resolve("support-bot", "usr_1", fallback="You are helpful.")
        assert answer.source == "fallback" and answer.content == "You are helpful."
        assert answer.error is not None and answer.error.code == "unavailable"
        bare = client.resolve("support-bot", "usr_1")
        assert bare.source == "none" and bare.content is None and not bare.ok
        assert client.config_age is None and client.config_etag is None
        server.hang.clear()
        wait_until(lambda: client.config is not None)
        assert client.resolve("support-bot", "usr_1", fallback="x").source == "config"


def test_the_disk_cache_serves_when_the_server_is_down_at_start(
    server: FakeServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "promptline.json"
    with client_for(server, stream=False, cache_path=cache) as client:
        assert client.resolve("support-bot", "u", {"company": "A"}).content == "v1 for A."
    assert cache.exists()
    assert not list(cache.parent.glob("*.json.*"))  # the temporary file was renamed
    server.up = False
    with client_for(server, stream=False, cache_path=cache, startup_timeout=0.5) as client:
        answer = client.resolve("support-bot", "u", {"company": "A"}, fallback="unused")
        assert answer.source == "disk" and answer.content == "v1 for A."
        assert client.config_etag == '"e1"' and client.config_source == "disk"
        server.up = True  # back: the next poll confirms (304) or replaces it
        client.refresh()
        assert client.resolve("support-bot", "u", {"company": "A"}).source == "config"


def test_a_broken_disk_cache_is_ignored(server: FakeServer, tmp_path: Path) -> None:
    cache = tmp_path / "promptline.json"
    cache.write_text("{not json")
    server.up = False
    with client_for(server, stream=False, cache_path=cache, startup_timeout=0.2) as client:
        assert client.resolve("support-bot", "u", fallback="f").source == "fallback"


def test_polling_revalidates_with_the_etag_and_picks_up_a_deploy(server: FakeServer) -> None:
    with client_for(server, stream=False, poll_interval=0.02) as client:
        wait_until(lambda: 304 in server.config_answers)
        revalidations = [r for r in server.requests if r.headers.get("if-none-match")]
        assert revalidations and revalidations[0].headers["if-none-match"] == '"e1"'
        server.publish(make_config('"e2"', serve=2))
        wait_until(lambda: client.resolve("support-bot", "u").version == "v2")
        assert client.config_etag == '"e2"'


def test_the_stream_announces_a_deploy(server: FakeServer) -> None:
    with client_for(server, poll_interval=3600) as client:
        wait_until(lambda: server.streams_opened > 0)
        server.publish(make_config('"e2"', serve=2, label="v2-everyone"))
        wait_until(lambda: client.config_etag == '"e2"')
        answer = client.resolve("support-bot", "u", {"company": "B"})
        assert (answer.version, answer.content, answer.traffic_rule) == (
            "v2",
            "v2 for B!",
            "v2-everyone",
        )


def test_the_stream_reconnects_after_it_breaks(server: FakeServer) -> None:
    with client_for(server, poll_interval=3600) as client:
        wait_until(lambda: server.streams_opened > 0)
        server.stream_up = False  # the open stream ends; reconnects are refused (503)
        wait_until(lambda: server.streams_ended > 0)
        server.stream_up = True
        opened = server.streams_opened
        wait_until(lambda: server.streams_opened > opened)
        server.publish(make_config('"e3"', serve=2))
        wait_until(lambda: client.config_etag == '"e3"')


def test_resolve_keeps_answering_when_the_server_goes_away(server: FakeServer) -> None:
    with client_for(server, poll_interval=0.02, events=False) as client:
        first = client.resolve("support-bot", "u", {"company": "A"})
        server.up = False
        failures = len(server.requests)
        wait_until(lambda: len(server.requests) > failures + 3)  # polls keep failing
        later = client.resolve("support-bot", "u", {"company": "A"})
        assert later.ok and later.source == "config" and later.content == first.content
        assert later.config_age is not None and first.config_age is not None
        assert later.config_age >= first.config_age


def test_problems_are_answers_unless_raise_errors(server: FakeServer) -> None:
    with client_for(server, stream=False) as client:
        unknown = client.resolve("no-such-prompt", "u")
        assert unknown.error is not None and unknown.error.code == "not_found"
        assert unknown.content is None and unknown.version is None
        assert unknown.error.message == (
            "Prompt 'no-such-prompt' not found, or it has no version to serve yet."
        )
        assert client.resolve("no-such-prompt", "u", fallback="F").content == "F"
        missing = client.resolve("support-bot", "u", strict=True)
        assert missing.error is not None and missing.error.field == "context"
        assert missing.error.message == "Missing template variables: company."
        lenient = client.resolve("support-bot", "u")
        assert lenient.ok and lenient.missing_variables == ("company",)
        assert lenient.content == "v1 for {{company}}."
        empty = client.resolve("support-bot", "")
        assert empty.error is not None and empty.error.message == (
            "user_id: String should have at least 1 character"
        )
    with client_for(server, stream=False, raise_errors=True) as client:
        with pytest.raises(ResolveError) as unknown_error:
            client.resolve("no-such-prompt", "u", fallback="F")
        assert unknown_error.value.code == "not_found" and unknown_error.value.status == 404
        with pytest.raises(ResolveError) as strict_error:
            client.resolve("support-bot", "u", strict=True)
        assert strict_error.value.field == "context" and strict_error.value.status == 400
        assert client.resolve("support-bot", "u", {"company": "A"}).ok


def test_one_exposure_per_user_prompt_and_version(server: FakeServer) -> None:
    with client_for(server, stream=False, poll_interval=0.02) as client:
        for _ in range(3):
            client.resolve("support-bot", "usr_a", {"company": "A"})
        client.resolve("prm_0193b2c4d5e67f0a8b9c0d1e2f3a4b5c", "usr_a")  # another spelling
        client.resolve("support-bot", "usr_b")
        assert client.flush(10.0)
        exposures = server.exposures()
        assert sorted(e["user_id"] for e in exposures) == ["usr_a", "usr_b"]
        first = next(e for e in exposures if e["user_id"] == "usr_a")
        assert first["prompt_id"] == "prm_0193b2c4d5e67f0a8b9c0d1e2f3a4b5c"
        assert first["version"] == 1 and first["split"] is True
        assert first["traffic_rule"] == "stable" and first["deployment_id"] == "dep_" + "d" * 32
        assert first["content_hash"] == "sha256:" + f"{1:064x}"
        server.publish(make_config('"e2"', serve=2))
        wait_until(lambda: client.resolve("support-bot", "usr_a").version == "v2")
        assert client.flush(10.0)
        versions = sorted(e["version"] for e in server.exposures() if e["user_id"] == "usr_a")
        assert versions == [1, 2]  # a new version is a new exposure


def test_a_signal_carries_the_version_last_resolved(server: FakeServer) -> None:
    with client_for(server, stream=False) as client:
        client.resolve("support-bot", "usr_a", {"company": "A"})
        client.signal("support-bot", "positive", user_id="usr_a", metadata={"source": "thumbs"})
        client.signal("prm_0193b2c4d5e67f0a8b9c0d1e2f3a4b5c", "negative", user_id="usr_a")
        client.signal("support-bot", "positive", user_id="usr_a", metadata={"version": 7})
        client.signal("support-bot", "positive", user_id="usr_unknown")
        client.analytics("support-bot", "sha256:" + f"{1:064x}", latency_ms=412.5)
        assert client.flush(10.0)
        signals = [e for e in server.events if e["type"] == "signal"]
        assert [s.get("metadata") for s in signals] == [
            {"source": "thumbs", "version": 1},
            {"version": 1},
            {"version": 7},
            None,
        ]
        assert [e["latency_ms"] for e in server.events if e["type"] == "analytics"] == [412.5]


def test_without_events_nothing_is_sent(server: FakeServer) -> None:
    with client_for(server, stream=False, events=False) as client:
        client.resolve("support-bot", "u")
        assert client.signal("support-bot", "positive", user_id="u") is None
        assert client.events is None and client.flush()
    assert not server.events


def test_close_stops_the_background(server: FakeServer) -> None:
    client = client_for(server, poll_interval=0.02)
    wait_until(lambda: server.streams_opened > 0)
    client.close()
    client.close()  # idempotent
    assert not any(t.name.startswith("promptline-") and t.is_alive() for t in client._threads)
    count = len(server.requests)
    assert client.resolve("support-bot", "u").ok  # still answers from what it has
    assert len(server.requests) == count
    assert threading.active_count() >= 1


def test_a_configuration_it_cannot_use_is_ignored(server: FakeServer) -> None:
    with client_for(server, stream=False, poll_interval=0.02, events=False) as client:
        broken = make_config('"broken"', serve=2)
        broken["hashing"]["algorithm"] = "sha1"
        server.publish(broken)
        wait_until(lambda: server.config_answers.count(200) >= 3)
        assert client.config_etag == '"e1"'  # the last good one is served
        assert client.resolve("support-bot", "u").version == "v1"
