"""The SDK's local resolve against the server's ``POST /v1/resolve`` itself, over HTTP.

Three hundred generated prompts (splits over one to four versions, up to six rules with
every operator and attribute kind, partial coverage, labels or none, some never deployed)
are written to one project's store; the SDK compiles the project's
``GET /v1/sdk/config``; then 340 generated (user, context, strict) questions per prompt are
asked of both: 102,000 resolutions, with no difference allowed but ``resolved_at``. It lives
with the control plane's tests so that ``make test`` runs it on the pure Python build and
again on the compiled release build (``make test-compiled``).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from controlplane.authoring import create_prompt, push_next_version
from controlplane.deployments import record_deployment
from promptline_sdk import compile_config
from promptline_sdk.resolve import CompiledConfig, ResolveError, answer
from tests.controlplane.test_api_harness import Api, Tenant, migrated_store, open_api
from tests.sdk.deployments import random_context, random_project, random_user

pytestmark = [pytest.mark.slow]

PROJECTS = 100
"""Generated projects of three prompts each, created as one project's 300 prompts."""
QUESTIONS = 340
AT_ONCE = 500
UNBOUND = {"POST /v1/resolve": "1000000/second", "GET /v1/sdk/config": "1000000/second"}

Outcome = tuple[Any, ...]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with migrated_store(None, tmp_path) as url, open_api(url) as harness:
        yield harness


async def _create(api: Api, tenant: Tenant, rng: random.Random) -> list[str]:
    """Every generated prompt with its versions and deployments, written in one transaction
    (through the routes, each write would reload the catalog: minutes for 300 prompts)."""
    names = []
    async with api.sessions() as session, session.begin():
        for project in range(PROJECTS):
            for spec in random_project(rng, prompts=3):
                name = f"p{project}-{spec.name}"
                prompt = await create_prompt(session, tenant.project_id, name)
                for content in spec.contents:
                    await push_next_version(session, prompt, content)
                for deployment in spec.deployments:
                    await record_deployment(
                        session,
                        prompt,
                        traffic=deployment["traffic"],
                        rules=deployment["rules"],
                        label=deployment["label"],
                        deployed_by="test",
                    )
                names.append(name)
    return names


def _sdk(config: CompiledConfig, body: dict[str, Any]) -> Outcome:
    try:
        decision = config.decide(body["prompt"], body["user_id"], body["context"], body["strict"])
    except ResolveError as error:
        return ("error", error.code, error.message, error.field)
    shown = answer(decision, "")
    del shown["resolved_at"]
    return ("ok", shown)


def _outcome(status: int, raw: bytes) -> Outcome:
    body = orjson.loads(raw)
    if status != 200:
        error = body["error"]
        return ("error", error["code"], error["message"], error.get("field"))
    del body["resolved_at"]
    return ("ok", body)


async def _pipelined(port: int, key: str, bodies: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    """``POST /v1/resolve`` for each body, all written at once on one kept-alive connection
    (HTTP/1.1 pipelining, which aiohttp's server answers in order), answers read back.

    A client of a few lines instead of aiohttp's: the server's answers are what is tested,
    and the client's cost per request would otherwise dominate the run.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        requests = []
        for body in bodies:
            data = json.dumps(body).encode()  # as Python clients send it (any integer)
            requests.append(
                b"POST /v1/resolve HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\n"
                b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data
            )
        writer.write(b"".join(requests))
        await writer.drain()
        answers = []
        for _ in bodies:
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answers.append((status, await reader.readexactly(length)))
        return answers
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_sdk_answers_every_question_as_post_resolve_does(api: Api) -> None:
    tenant = await api.tenant(overrides=UNBOUND)
    rng = random.Random(20261207)
    names = await _create(api, tenant, rng)
    await api.watcher.refresh()
    fetched = await api.call("GET", "/v1/sdk/config", tenant.key)
    assert fetched.status == 200, fetched.body
    config = compile_config(fetched.body)
    questions = [
        {
            "prompt": name,
            "user_id": random_user(rng),
            "context": random_context(rng),
            "strict": rng.random() < 0.3,
        }
        for name in names
        for _ in range(QUESTIONS)
    ]
    assert len(questions) >= 100_000
    port = api.client.server.port
    assert port is not None
    answered = 0
    for first in range(0, len(questions), AT_ONCE):
        chunk = questions[first : first + AT_ONCE]
        served = await _pipelined(port, tenant.key, chunk)
        for body, (status, raw) in zip(chunk, served, strict=True):
            expected = _outcome(status, raw)
            got = _sdk(config, body)
            assert got == expected, (body, got, expected)
            answered += expected[0] == "ok"
    assert answered > len(questions) // 2  # most questions resolve: the comparison has teeth
