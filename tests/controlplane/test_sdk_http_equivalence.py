"""The SDK's local resolve against the server's ``POST /v1/resolve`` itself, over HTTP.

Three hundred generated prompts (splits over one to four versions, up to six rules with
every operator and attribute kind, partial coverage, labels or none, some never deployed)
are created through the routes in one project; the SDK compiles the project's
``GET /v1/sdk/config``; then 340 generated (user, context, strict) questions per prompt are
asked of both: 102,000 resolutions, with no difference allowed but ``resolved_at``. It lives
with the control plane's tests so that ``make test`` runs it on the pure Python build and
again on the compiled release build (``make test-compiled``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from promptline_sdk import compile_config
from promptline_sdk.resolve import CompiledConfig, ResolveError, answer
from tests.controlplane.test_api_harness import Api, Tenant, migrated_store, open_api
from tests.sdk.deployments import random_context, random_project, random_user

pytestmark = [pytest.mark.slow]

PROJECTS = 100
"""Generated projects of three prompts each, created as one project's 300 prompts."""
QUESTIONS = 340
AT_ONCE = 200
UNBOUND = {"POST /v1/resolve": "1000000/second", "GET /v1/sdk/config": "1000000/second"}

Outcome = tuple[Any, ...]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with migrated_store(None, tmp_path) as url, open_api(url) as harness:
        yield harness


async def _create(api: Api, tenant: Tenant, rng: random.Random) -> list[str]:
    """Every generated prompt, its versions and deployments, through the routes."""
    names = []
    for project in range(PROJECTS):
        for spec in random_project(rng, prompts=3):
            name = f"p{project}-{spec.name}"
            await api.prompt(tenant, name, *spec.contents)
            for deployment in spec.deployments:
                deployed = await api.call(
                    "POST", f"/v1/prompts/{name}/deploy", tenant.key, json=deployment
                )
                assert deployed.status == 201, (name, deployment, deployed.body)
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


async def _server(api: Api, tenant: Tenant, body: dict[str, Any]) -> Outcome:
    reply = await api.call("POST", "/v1/resolve", tenant.key, json=body)
    if reply.status != 200:
        error = reply.body["error"]
        return ("error", error["code"], error["message"], error.get("field"))
    shown = dict(reply.body)
    del shown["resolved_at"]
    return ("ok", shown)


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
    answered = 0
    for first in range(0, len(questions), AT_ONCE):
        chunk = questions[first : first + AT_ONCE]
        served = await asyncio.gather(*(_server(api, tenant, body) for body in chunk))
        for body, expected in zip(chunk, served, strict=True):
            got = _sdk(config, body)
            assert got == expected, (body, got, expected)
            answered += expected[0] == "ok"
    assert answered > len(questions) // 2  # most questions resolve: the comparison has teeth
