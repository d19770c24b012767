"""Concurrent writes: version numbers stay unique and gapless, conflicts stay conflicts."""

from __future__ import annotations

import asyncio

from tests.controlplane.test_api_harness import (
    Api,
    Tenant,
)

CONCURRENCY = 12


async def test_concurrent_version_pushes_get_distinct_numbers(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, "busy")
    replies = await asyncio.gather(
        *(
            api.call(
                "POST", f"/v1/prompts/{prompt['id']}/versions", tenant.key, json={"content": f"{i}"}
            )
            for i in range(CONCURRENCY)
        )
    )
    assert [reply.status for reply in replies] == [201] * CONCURRENCY
    numbers = sorted(int(reply.body["version"].removeprefix("v")) for reply in replies)
    assert numbers == list(range(1, CONCURRENCY + 1))


async def test_concurrent_first_pushes_of_a_new_template_make_one_template(
    api: Api, tenant: Tenant
) -> None:
    replies = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/api/v1/prompt-templates",
                tenant.key,
                json={"name": "born-busy", "content": f"text {i}"},
            )
            for i in range(CONCURRENCY)
        )
    )
    assert [reply.status for reply in replies] == [201] * CONCURRENCY
    assert len({reply.body["data"]["templateId"] for reply in replies}) == 1
    versions = sorted(reply.body["data"]["version"] for reply in replies)
    assert versions == list(range(1, CONCURRENCY + 1))


async def test_concurrent_creates_of_one_explicit_version_let_exactly_one_win(
    api: Api, tenant: Tenant
) -> None:
    replies = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/dashboard/prompts/",
                tenant.key,
                json={"name": "contested", "version": 1, "content": f"text {i}"},
            )
            for i in range(CONCURRENCY)
        )
    )
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [409] * (CONCURRENCY - 1)
    listed = await api.call("GET", "/dashboard/prompts/contested/versions", tenant.key)
    assert [row["version"] for row in listed.body] == [1]


async def test_concurrent_deploys_all_land_in_history(api: Api, tenant: Tenant) -> None:
    await api.prompt(tenant, "deployed-often", "one", "two")
    replies = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/v1/prompts/deployed-often/deploy",
                tenant.key,
                json={
                    "traffic": [
                        {"version": "v1", "weight": i},
                        {"version": "v2", "weight": 100 - i},
                    ],
                    "label": f"step-{i}",
                },
            )
            for i in range(CONCURRENCY)
        )
    )
    assert [reply.status for reply in replies] == [201] * CONCURRENCY
    history = await api.call("GET", "/v1/prompts/deployed-often/deployments", tenant.key)
    assert sorted(row["label"] for row in history.body["deployments"]) == sorted(
        f"step-{i}" for i in range(CONCURRENCY)
    )
