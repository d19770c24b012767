"""The API document drives a property-based fuzzer (schemathesis) against the real service.

``promptline serve`` runs as a process of its own over the session's real broker and
ClickHouse, with a key whose limits do not bind and a prompt with versions and deployments.
Every operation of ``/openapi.json`` is first called once as a client that knows the data
would call it (so each answers 2xx at least once), then with cases schemathesis draws from
the document, half of them naming prompts and versions that exist. Every answer must be no
5xx, a documented status, a body matching its documented schema, and every 4xx the error
envelope. The counts per operation are printed. Nothing leaves this machine: the service
is on loopback and the cases are sent to it only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from promptline.commands.admin import change_limits, quickstart
from promptline.commands.served_limits import served_endpoints
from promptline.devstack.stack import local_env
from promptline.settings import Settings
from tests.contract.conftest import REPORT

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 25
"""Drawn cases per operation: about 36 operations keep the whole run near two minutes."""
UNBOUND = "100000/second"
ORIGIN = "https://app.example.com"
WEBHOOK_URL = "https://1.1.1.1/contract-hook"
"""A public address given literally: registering it needs no DNS, and nothing is sent
(no deliverer runs beside the service here)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
"""No 5xx, a documented status and content type, a body matching its documented schema
(every 4xx is documented as the error envelope, so this checks it is one)."""


@dataclass
class World:
    """What exists in the service: the key, a prompt and its versions."""

    base: str
    key: str
    prompt: str
    prompt_ids: list[str]
    versions: list[str]
    version_hash: str
    prompt_uuid: str
    webhook_ids: list[str]
    pages: tuple[dict[str, str], str]
    """A dashboard session's cookie and its CSRF token."""
    leaving: tuple[dict[str, str], str]
    """Another session, for the known call that signs out."""


@dataclass
class Tally:
    """Requests and 2xx answers per operation, and every contract broken."""

    requests: dict[str, int] = field(default_factory=dict)
    ok: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, operation: str, status: int) -> None:
        self.requests[operation] = self.requests.get(operation, 0) + 1
        if 200 <= status < 300:
            self.ok[operation] = self.ok.get(operation, 0) + 1

    def report(self) -> str:
        lines = [f"{'operation':60} requests  2xx"]
        for operation in sorted(self.requests):
            lines.append(
                f"{operation:60} {self.requests[operation]:8} {self.ok.get(operation, 0):4}"
            )
        lines.append(
            f"{len(self.requests)} operations, {sum(self.requests.values())} requests,"
            f" {len(self.failures)} failures"
        )
        return "\n".join(lines)


@contextlib.asynccontextmanager
async def _service(settings: Settings, log: Path) -> AsyncIterator[str]:
    """``promptline serve`` with ``settings``, until healthy; stopped afterwards."""
    env = {**os.environ, **local_env(settings), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "promptline", "serve", env=env, cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://{settings.listen_host}:{settings.listen_port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _attempt in range(240):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/readyz") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(f"the service did not get ready; its log: {log}")
        yield base
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def _world(settings: Settings, base: str) -> World:
    """A business key whose limits do not bind, and a prompt with two versions, deployed."""
    made = await quickstart(settings)
    served = await asyncio.to_thread(served_endpoints, settings)  # builds the app: imports
    limits = [f"{name}={UNBOUND}" for name in sorted(served) if " " in name]
    await change_limits(settings, made["org_id"], [*limits, "signals_per_month=100000000"], [])
    key, name = made["api_key"], "contract-bot"
    headers = {"Authorization": f"Bearer {key}"}
    await asyncio.sleep(1.5)  # every process applies a limit change within a second
    async with aiohttp.ClientSession(base, headers=headers) as session:
        async with session.post("/v1/prompts", json={"name": name}) as answer:
            assert answer.status == 201, await answer.text()
            prompt = await answer.json()
        for content in ("Hello {{who}}", "Hi {{who}}"):
            async with session.post(f"/v1/prompts/{name}/versions", json={"content": content}):
                pass
        async with session.get(f"/v1/prompts/{name}/versions/v1") as answer:
            version = await answer.json()
        traffic = {"traffic": [{"version": "v1", "weight": 100}]}
        async with session.post(f"/v1/prompts/{name}/deploy", json=traffic) as answer:
            assert answer.status == 201, await answer.text()
        guarded = {"guard": {"candidate": "v2", "guardrails": [{"metric": "latency_ms"}]}}
        async with session.post(f"/v1/prompts/{name}/deploy", json=guarded) as answer:
            assert answer.status == 201, await answer.text()
        async with session.post("/v1/webhooks", json={"url": WEBHOOK_URL}) as answer:
            assert answer.status == 201, await answer.text()
            webhook = await answer.json()
    uuid_text = str(prompt["prompt_uuid"])
    pages, leaving = await _signed_in(base, key), await _signed_in(base, key)
    return World(
        base=base,
        key=key,
        prompt=name,
        prompt_ids=[prompt["id"], uuid_text, name],
        versions=["v1", "1", "v2"],
        version_hash=version["content_hash"],
        prompt_uuid=uuid_text,
        webhook_ids=[webhook["webhook_id"]],
        pages=pages,
        leaving=leaving,
    )


async def _signed_in(base: str, key: str) -> tuple[dict[str, str], str]:
    """A dashboard session: its cookie, and the CSRF token its pages' forms carry."""
    jar = aiohttp.CookieJar(unsafe=True)  # the service is on an IP address
    async with aiohttp.ClientSession(base, cookie_jar=jar) as session:
        async with session.post("/ui/sign-in", data={"key": key}) as answer:
            page = await answer.text()
            assert answer.status == 200, page
        cookie = session.cookie_jar.filter_cookies(answer.url)["promptline_ui"].value
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return {"promptline_ui": cookie}, token


def _known_calls(world: World) -> dict[str, Callable[[], dict[str, Any]]]:
    """One call per operation that a client knowing the data would make: each must be 2xx."""
    name, uuid_text = world.prompt, world.prompt_uuid
    link = {"name": name, "version": 1, "trace_id": str(uuid.uuid4())}
    analytics = {"prompt_id": uuid_text, "version_hash": world.version_hash, "latency_ms": 5}
    exposure = {"prompt_id": name, "version": "v1", "traffic_rule": "latest", "user_id": "u-1"}
    canary = {"traffic": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}
    calls: dict[str, dict[str, Any]] = {
        "GET /healthz": {},
        "GET /readyz": {},
        "GET /metrics": {},
        "GET /openapi.json": {},
        "GET /docs": {},
        "GET /v1/prompts": {},
        "POST /v1/prompts": {"json": {"name": f"known-{uuid.uuid4().hex[:8]}"}},
        "GET /v1/prompts/{prompt_id}": {},
        "GET /v1/prompts/{prompt_id}/versions": {},
        "POST /v1/prompts/{prompt_id}/versions": {"json": {"content": uuid.uuid4().hex}},
        "GET /v1/prompts/{prompt_id}/versions/{version}": {},
        "GET /v1/prompts/{prompt_id}/deployments": {},
        "POST /v1/prompts/{prompt_id}/deploy": {"json": canary},
        "POST /v1/prompts/{prompt_id}/rollback": {},
        "GET /v1/prompts/{prompt_id}/rollout": {},
        "POST /v1/prompts/{prompt_id}/rollout/stop": {},
        "GET /v1/prompts/{prompt_id}/compare": {},
        "POST /v1/resolve": {"json": {"prompt": name, "user_id": "u-1"}},
        "GET /v1/webhooks": {},
        "GET /v1/sdk/config": {},
        "GET /v1/sdk/stream": {"params": {"once": "true"}},
        "POST /v1/webhooks": {"json": {"url": WEBHOOK_URL, "events": ["rollout.rolled_back"]}},
        "DELETE /v1/webhooks/{webhook_id}": {},
        "GET /api/v1/prompts/{prompt_id}/compare": {},
        "GET /api/v1/prompt-templates": {"params": {"name": name}},
        "POST /api/v1/prompt-templates": {
            "json": {"name": f"tmpl-{uuid.uuid4().hex[:8]}", "content": "x"}
        },
        "GET /dashboard/prompts": {},
        "GET /dashboard/prompts/": {},
        "POST /dashboard/prompts": {
            "json": {"name": f"dash-{uuid.uuid4().hex[:8]}", "version": 1, "content": "c"}
        },
        "POST /dashboard/prompts/": {
            "json": {"name": f"dash-{uuid.uuid4().hex[:8]}", "version": 1, "content": "c"}
        },
        "GET /dashboard/prompts/{name}/versions": {},
        "GET /dashboard/prompts/{name}/versions/": {},
        "GET /dashboard/prompts/{name}/compare": {},
        "GET /dashboard/prompts/{name}/compare/": {},
        "POST /api/v1/prompts/analytics": {"json": analytics},
        "POST /api/v1/prompts/{prompt_id}/signals": {"json": {"value": "positive"}},
        "POST /dashboard/prompts/usage": {"json": link},
        "POST /dashboard/prompts/usage/": {"json": link},
        "POST /api/v1/events/batch": {
            "json": {
                "events": [
                    {"type": "analytics", **analytics},
                    {"type": "usage", **link},
                    {"type": "exposure", **exposure},
                ]
            }
        },
    }
    cookies, token = world.pages
    for page in (
        "/ui",
        "/ui/",
        "/ui/prompts",
        "/ui/prompts/{prompt_id}",
        "/ui/prompts/{prompt_id}/diff",
        "/ui/prompts/{prompt_id}/compare",
        "/ui/prompts/{prompt_id}/rollout",
    ):
        calls[f"GET {page}"] = {"cookies": cookies}
    calls["GET /ui/static/style.css"] = {}
    calls["GET /ui/sign-in"] = {}
    calls["POST /ui/sign-in"] = {"data": {"key": world.key}}
    for action in ("deploy", "rollback", "rollout/stop"):  # each first asks: nothing written
        form = {"csrf_token": token} | ({"weight_1": "100"} if action == "deploy" else {})
        calls[f"POST /ui/prompts/{{prompt_id}}/{action}"] = {"cookies": cookies, "data": form}
    calls["POST /ui/sign-out"] = {
        "cookies": world.leaving[0],
        "data": {"csrf_token": world.leaving[1]},
    }
    for path in (
        "/api/v1/events/batch",
        "/api/v1/prompts/analytics",
        "/api/v1/prompts/{prompt_id}/signals",
        "/dashboard/prompts/usage",
        "/dashboard/prompts/usage/",
    ):
        calls[f"OPTIONS {path}"] = {
            "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        }
    return {operation: _fresh(spec) for operation, spec in calls.items()}


def _fresh(spec: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A call's keyword arguments, a new dict each time (callers pop from it)."""
    return lambda: dict(spec)


def _fill(path: str, world: World, choose: Callable[[list[str]], str]) -> str:
    for name, values in (
        ("{prompt_id}", world.prompt_ids),
        ("{name}", [world.prompt]),
        ("{version}", world.versions),
        ("{webhook_id}", world.webhook_ids),
    ):
        if name in path:
            path = path.replace(name, choose(values))
    return path


def _call_known(world: World, schema: Any, tally: Tally) -> None:
    """Each operation once as a knowing client would call it, checked like a drawn case."""
    known = _known_calls(world)
    auth = {"Authorization": f"Bearer {world.key}"}
    # The guarded rollout is shown and stopped before a deploy ends it; a canary is
    # deployed before the rollback that undoes it.
    order = sorted(
        known, key=lambda op: 0 if "/rollout" in op else 2 if op.endswith("/rollback") else 1
    )
    for operation in order:
        method, path = operation.split(" ", 1)
        spec = known[operation]()
        url = world.base + _fill(path, world, lambda values: values[0])
        headers = {**auth, **spec.pop("headers", {})}
        answer = requests.request(method, url, headers=headers, timeout=30, **spec)
        tally.count(operation, answer.status_code)
        if not 200 <= answer.status_code < 300:
            tally.failures.append(f"{operation}: known call answered {answer.status_code}")
        found = schema.find_operation_by_path(method, path)
        if found is None:
            tally.failures.append(f"{operation}: not in the document")
            continue
        named = {
            "prompt_id": world.prompt_ids[0],
            "name": world.prompt,
            "version": "v1",
            "webhook_id": world.webhook_ids[0],
        }
        case = found.Case(path_parameters={k: v for k, v in named.items() if f"{{{k}}}" in path})
        try:
            case.validate_response(_as_response(answer), checks=_checks())
        except Exception as error:  # every broken contract is reported
            tally.failures.append(f"{operation}: known call: {str(error)[:400]}")
    missing = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    } - set(known)
    tally.failures.extend(f"{operation}: no known call" for operation in sorted(missing))


def _as_response(answer: requests.Response) -> Any:
    return schemathesis.Response.from_requests(answer, verify=True)


def _checks() -> list[Any]:
    return list(CHECKS)


def _fuzz(world: World, document: dict[str, Any]) -> Tally:
    """Known calls, then drawn cases for every operation; runs in a thread (blocking I/O)."""
    schema = schemathesis.openapi.from_dict(document)
    tally = Tally()
    _call_known(world, schema, tally)
    for result in schema.get_all_operations():
        operation = result.ok() if isinstance(result, Ok) else None
        if operation is None:
            tally.failures.append(
                f"the document has an operation schemathesis cannot read: {result}"
            )
            continue
        _fuzz_operation(operation, world, tally)
    return tally


def _fuzz_operation(operation: Any, world: World, tally: Tally) -> None:
    """Drawn cases of one operation, half naming prompts and versions that exist."""
    label = f"{operation.method.upper()} {operation.path}"
    auth = {"Authorization": f"Bearer {world.key}"}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        for name, values in (
            ("prompt_id", world.prompt_ids),
            ("name", [world.prompt]),
            ("version", world.versions),
            ("webhook_id", world.webhook_ids),
        ):
            if case.path_parameters and name in case.path_parameters and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(values))
        headers = {**(case.headers or {}), **auth}
        if operation.path == "/v1/sdk/stream":  # an open stream never ends: its first event
            case.query = {**(case.query or {}), "once": "true"}
        answer = case.call(base_url=world.base, headers=headers, timeout=30)
        tally.count(label, answer.status_code)
        try:
            case.validate_response(answer, checks=_checks())
        except Exception as error:  # every broken contract is reported
            tally.failures.append(f"{label}: {str(error)[:600]}")

    run()


@pytest.fixture
async def world(migrated: Settings, tmp_path: Path) -> AsyncIterator[World]:
    async with _service(migrated, tmp_path / "serve.log") as base:
        yield await _world(migrated, base)


async def test_every_operation_keeps_its_documented_contract(
    world: World, request: pytest.FixtureRequest
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{world.base}/openapi.json") as answer,
    ):
        document = await answer.json()
    tally = await asyncio.to_thread(_fuzz, world, document)
    request.config.stash[REPORT] = tally.report()
    assert not tally.failures, "\n".join(tally.failures[:40])
    documented = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert {op for op in documented if tally.ok.get(op, 0) == 0} == set()
