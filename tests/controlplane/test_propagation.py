"""A change made through one ``promptline serve`` process is seen by another within 1 s.

The product promise (ARCHITECTURE.md): every process polls the catalog revision every
250 ms, so a deployment, a new key or a revoked key reaches every process within one
second. Two real ``serve`` processes share one store (a SQLite file, or a fresh
PostgreSQL database) and a Tansu broker of their own; a change goes through process A
(or the admin functions, or the CLI), and process B is polled every 50 ms. The bound is
the issue's behaviour requirement, measured from the moment A's 2xx (or the admin call)
returned; the processes are warmed up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from blockbuster import BlockBuster

from promptline.commands import admin
from promptline.devstack.services import (
    LOOPBACK,
    free_port,
    http_ok,
    running,
    running_broker,
)
from promptline.settings import Settings
from tests.controlplane.test_api_harness import allow_pg_connect_probes
from tests.support.postgres import Postgres, server_for_store

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BOUND = 1.0
"""Seconds within which every process must see a change: the product requirement."""
POLL = 0.05
GIVE_UP = 10.0
PROMPT = "propagation"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Two serving processes over one store, and a tenant with a prompt."""

    settings: Settings
    env: dict[str, str]
    a: str
    b: str
    project_id: uuid.UUID
    key: str


def _cli(env: dict[str, str], *args: str) -> Any:
    """Run ``promptline ...`` and parse what it printed (JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "promptline", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@contextlib.contextmanager
def _store(postgres: Postgres | None, folder: Path) -> Iterator[str]:
    """An empty store's URL: a SQLite file, or a fresh PostgreSQL database (dropped after)."""
    if postgres is None:
        yield f"sqlite+aiosqlite:///{folder / 'control.db'}"
        return
    database = postgres.create_database("promptline_prop")
    try:
        yield postgres.url(database)
    finally:
        postgres.drop_database(database)


@contextlib.contextmanager
def _serving(env: dict[str, str], folder: Path, name: str) -> Iterator[str]:
    """One ``promptline serve`` process on a free port, ready; its base URL."""
    port = free_port()
    log = folder / f"{name}.log"
    command = [sys.executable, "-m", "promptline", "serve"]
    base = f"http://{LOOPBACK}:{port}"
    with running(
        command,
        log,
        ready=lambda: http_ok(f"{base}/readyz"),
        what=f"server {name}",
        env={**env, "PROMPTLINE_LISTEN_PORT": str(port)},
    ):
        yield base


def _warm_up(cluster: Cluster) -> None:
    """A prompt with two versions made through A, resolved on both until B knows it."""

    async def work() -> None:
        async with ClientSession(headers={"Authorization": f"Bearer {cluster.key}"}) as http:
            await _post(http, f"{cluster.a}/v1/prompts", {"name": PROMPT}, 201)
            for content in ("one {{x}}", "two {{x}}"):
                body = {"content": content}
                await _post(http, f"{cluster.a}/v1/prompts/{PROMPT}/versions", body, 201)
            for base in (cluster.a, cluster.b):
                await _wait_for(functools.partial(_resolves, http, base), GIVE_UP)
                for index in range(50):
                    await _resolve(http, base, f"warm-{index}")

    asyncio.run(work())


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Broker, migrated store, tenant, processes A and B, warmed up."""
    folder = tmp_path_factory.mktemp("propagation")
    broker_port, postgres = free_port(), server_for_store(request)
    with running_broker(broker_port, folder / "broker.log"), _store(postgres, folder) as url:
        env = {
            "PROMPTLINE_DATABASE_URL": url,
            "PROMPTLINE_KAFKA_BOOTSTRAP_SERVERS": f"{LOOPBACK}:{broker_port}",
            "PROMPTLINE_KAFKA_ENABLE_IDEMPOTENCE": "false",
            "PROMPTLINE_KAFKA_TOPIC_PREFIX": f"prop-{uuid.uuid4().hex[:8]}.",
            "PROMPTLINE_LISTEN_HOST": LOOPBACK,
            "PROMPTLINE_LOG_FORMAT": "text",
            "PROMPTLINE_STATE_DIR": str(folder / "state"),
        }
        _cli(env, "migrate", "--only", "store", "--only", "kafka")
        org = _cli(env, "admin", "create-org", "--name", "propagation", "--plan", "business")
        project = _cli(env, "admin", "create-project", "--org", org["org_id"], "--name", "p")
        key = _cli(env, "admin", "create-key", "--project", project["project_id"])
        settings = Settings(database_url=url)
        with _serving(env, folder, "a") as a, _serving(env, folder, "b") as b:
            built = Cluster(settings, env, a, b, uuid.UUID(project["project_id"]), key["api_key"])
            _warm_up(built)
            yield built


async def _post(http: ClientSession, url: str, body: dict[str, Any], status: int) -> Any:
    async with http.post(url, json=body) as response:
        answer = await response.json()
        assert response.status == status, answer
        return answer


async def _resolve(http: ClientSession, base: str, user: str, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else None
    body = {"prompt": PROMPT, "user_id": user, "context": {"x": 1}}
    async with http.post(f"{base}/v1/resolve", json=body, headers=headers) as response:
        return response.status, await response.json()


async def _resolves(http: ClientSession, base: str) -> bool:
    status, _answer = await _resolve(http, base, "probe")
    return bool(status == 200)


async def _wait_for(seen: Callable[[], Awaitable[bool]], give_up: float) -> float:
    """Poll every 50 ms; the seconds it took, or ``give_up`` if it never happened."""
    started = time.monotonic()
    while time.monotonic() - started < give_up:
        if await seen():
            return time.monotonic() - started
        await asyncio.sleep(POLL)
    return give_up


async def _elapsed_until(since: float, seen: Callable[[], Awaitable[bool]]) -> float:
    """Seconds from ``since`` (a monotonic time) until ``seen`` holds."""
    await _wait_for(seen, GIVE_UP)
    return time.monotonic() - since


async def test_a_deploy_through_a_is_served_by_b_within_a_second(cluster: Cluster) -> None:
    splits = [
        [{"version": "v1", "weight": 100}],
        [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
        [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}],
    ]
    async with ClientSession(headers={"Authorization": f"Bearer {cluster.key}"}) as http:
        for index, traffic in enumerate(splits):
            label = f"split-{index}"
            url = f"{cluster.a}/v1/prompts/{PROMPT}/deploy"
            deployed = await _post(http, url, {"traffic": traffic, "label": label}, 201)
            answered = time.monotonic()
            _status, on_a = await _resolve(http, cluster.a, "usr_1")
            assert on_a["deployment_id"] == deployed["deployment_id"]  # A reads its writes

            async def b_serves_it(wanted: str = deployed["deployment_id"]) -> bool:
                status, answer = await _resolve(http, cluster.b, "usr_1")
                return bool(status == 200 and answer["deployment_id"] == wanted)

            elapsed = await _elapsed_until(answered, b_serves_it)
            assert elapsed < BOUND, f"B served deployment {label} only after {elapsed:.3f}s"
            _status, on_b = await _resolve(http, cluster.b, "usr_1")
            assert on_b["traffic_rule"] == label


async def test_a_new_key_works_and_a_revoked_key_fails_on_both_within_a_second(
    cluster: Cluster, blockbuster: BlockBuster
) -> None:
    allow_pg_connect_probes(blockbuster)
    issued = await admin.create_key(cluster.settings, cluster.project_id, ["read"], "new")
    created = time.monotonic()
    key_id, secret = issued["key_id"], issued["api_key"]
    async with ClientSession() as http:

        def answers(base: str, status: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                got, _answer = await _resolve(http, base, "usr_new", secret)
                return bool(got == status)

            return check

        accepted = await asyncio.gather(
            *(_elapsed_until(created, answers(base, 200)) for base in (cluster.a, cluster.b))
        )
        assert max(accepted) < BOUND, f"new key accepted after {accepted} s (A, B)"

        revoker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "promptline", "admin", "revoke-key", "--key-id", key_id,
            env={**os.environ, **cluster.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        printed, errors = await revoker.communicate()
        revoked = time.monotonic()
        assert revoker.returncode == 0, errors.decode()
        assert json.loads(printed)["key_id"] == key_id
        refused = await asyncio.gather(
            *(_elapsed_until(revoked, answers(base, 401)) for base in (cluster.a, cluster.b))
        )
        assert max(refused) < BOUND, f"revoked key refused after {refused} s (A, B)"
        _status, answer = await _resolve(http, cluster.a, "usr_new", cluster.key)
        assert answer["prompt"] == PROMPT  # the other key is untouched
