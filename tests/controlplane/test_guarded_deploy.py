"""Guarded deploys through the routes: the first step, refusals, and what ends a rollout.

The guard's decisions are tested in tests/guard; here, what the store holds and the routes
answer: a guarded deploy writes its first step with the reason and the rollout's id, the
rollout shows through ``GET .../rollout``, and a deploy, rollback or stop made by hand
ends it, recorded.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from controlplane.store.models import Delivery, Webhook
from tests.controlplane.test_api_harness import Api, Tenant

GUARDRAILS = [{"metric": "latency_ms", "margin": 0.1}]


async def _canary(api: Api, tenant: Tenant) -> dict[str, Any]:
    """A prompt serving v1 to everyone, with a v2 pushed."""
    prompt = await api.prompt(tenant, f"p-{uuid.uuid4().hex[:8]}", "one {{x}}", "two {{x}}")
    deployed = await api.call(
        "POST",
        f"/v1/prompts/{prompt['id']}/deploy",
        tenant.key,
        json={"traffic": [{"version": "v1", "weight": 100}]},
    )
    assert deployed.status == 201, deployed.body
    return prompt


def _guard(**changes: Any) -> dict[str, Any]:
    return {"candidate": "v2", "ramp": [10, 50, 100], "guardrails": GUARDRAILS} | changes


async def test_a_guarded_deploy_puts_its_first_step_in_force(api: Api, tenant: Tenant) -> None:
    prompt = await _canary(api, tenant)
    path = f"/v1/prompts/{prompt['id']}"
    started = await api.call("POST", f"{path}/deploy", tenant.key, json={"guard": _guard()})
    assert started.status == 201, started.body
    assert started.body["traffic"] == [
        {"version": "v1", "weight": 90},
        {"version": "v2", "weight": 10},
    ]
    assert started.body["reason"] == "guarded rollout: step 1 of 3, 10% to v2"
    assert started.body["rollout_id"].startswith("rol_")

    shown = await api.call("GET", f"{path}/rollout", tenant.key)
    assert shown.status == 200, shown.body
    assert shown.body["rollout_id"] == started.body["rollout_id"]
    assert (shown.body["status"], shown.body["step"], shown.body["percent"]) == ("running", 1, 10)
    assert (shown.body["candidate"], shown.body["baseline"]) == ("v2", "v1")
    assert shown.body["deployment_id"] == started.body["deployment_id"]
    assert shown.body["next"] == "the guard has not looked at it yet"

    history = await api.call("GET", f"{path}/deployments", tenant.key)
    assert history.body["deployments"][0]["rollout_id"] == started.body["rollout_id"]
    assert history.body["deployments"][1]["reason"] is None  # the deploy made by hand


@pytest.mark.parametrize(
    ("guard", "field", "words"),
    [
        (_guard(candidate="v9"), "guard.candidate", "v9 does not exist"),
        (_guard(candidate="v1"), "guard.candidate", "same content as the baseline"),
        (_guard(baseline="v7"), "guard.baseline", "v7 does not exist"),
        (_guard(ramp=[10, 50]), "guard.ramp", "must end at 100"),
        (_guard(ramp=[100]), "guard.ramp", "needs a step below 100"),
        (_guard(ramp=[50, 10, 100]), "guard.ramp", "must increase"),
        (_guard(guardrails=[]), "guard.guardrails", ""),
        (_guard(guardrails=[{"metric": "mood"}]), "guard.guardrails.0.metric", ""),
        (_guard(deadline="2001-01-01T00:00:00Z"), "guard.deadline", "already passed"),
        (_guard(min_step_seconds=0), "guard.min_step_seconds", ""),
    ],
)
async def test_a_guard_that_cannot_start_is_refused_naming_its_field(
    api: Api, tenant: Tenant, guard: dict[str, Any], field: str, words: str
) -> None:
    prompt = await _canary(api, tenant)
    refused = await api.call(
        "POST", f"/v1/prompts/{prompt['id']}/deploy", tenant.key, json={"guard": guard}
    )
    assert refused.status == 400, refused.body
    assert refused.body["error"]["field"] == field
    assert words in refused.body["error"]["message"]
    shown = await api.call("GET", f"/v1/prompts/{prompt['id']}/rollout", tenant.key)
    assert shown.status == 404


async def test_no_stable_version_needs_a_named_baseline(api: Api, tenant: Tenant) -> None:
    prompt = await api.prompt(tenant, f"p-{uuid.uuid4().hex[:8]}", "one", "two", "three")
    path = f"/v1/prompts/{prompt['id']}/deploy"
    split = {"traffic": [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}]}
    assert (await api.call("POST", path, tenant.key, json=split)).status == 201
    refused = await api.call("POST", path, tenant.key, json={"guard": _guard(candidate="v3")})
    assert (refused.status, refused.body["error"]["field"]) == (400, "guard.baseline")
    named = await api.call(
        "POST", path, tenant.key, json={"guard": _guard(candidate="v3", baseline="v1")}
    )
    assert named.status == 201, named.body
    assert named.body["traffic"] == [
        {"version": "v1", "weight": 90},
        {"version": "v3", "weight": 10},
    ]


async def test_traffic_and_guard_together_are_refused(api: Api, tenant: Tenant) -> None:
    prompt = await _canary(api, tenant)
    refused = await api.call(
        "POST",
        f"/v1/prompts/{prompt['id']}/deploy",
        tenant.key,
        json={"guard": _guard(), "traffic": [{"version": "v2", "weight": 100}]},
    )
    assert (refused.status, refused.body["error"]["field"]) == (400, "traffic")


@pytest.mark.parametrize("by_hand", ["deploy", "rollback", "stop"])
async def test_a_change_by_hand_ends_the_rollout(api: Api, tenant: Tenant, by_hand: str) -> None:
    prompt = await _canary(api, tenant)
    path = f"/v1/prompts/{prompt['id']}"
    started = await api.call("POST", f"{path}/deploy", tenant.key, json={"guard": _guard()})
    assert started.status == 201
    if by_hand == "deploy":
        done = await api.call(
            "POST",
            f"{path}/deploy",
            tenant.key,
            json={"traffic": [{"version": "v2", "weight": 100}]},
        )
        assert done.status == 201
    elif by_hand == "rollback":
        done = await api.call("POST", f"{path}/rollback", tenant.key)
        assert done.status == 200, done.body
    else:
        done = await api.call("POST", f"{path}/rollout/stop", tenant.key)
        assert done.status == 200, done.body
        assert done.body["status"] == "stopped"
    shown = await api.call("GET", f"{path}/rollout", tenant.key)
    assert shown.body["status"] == "stopped"
    assert shown.body["outcome"].startswith("ended by hand (key_")
    assert shown.body["ended_at"] is not None
    assert shown.body["next"] == "nothing: the rollout is stopped"
    again = await api.call("POST", f"{path}/rollout/stop", tenant.key)
    assert again.status == 409


async def test_another_project_sees_no_rollout(api: Api, tenant: Tenant) -> None:
    prompt = await _canary(api, tenant)
    path = f"/v1/prompts/{prompt['id']}"
    assert (
        await api.call("POST", f"{path}/deploy", tenant.key, json={"guard": _guard()})
    ).status == 201
    other = await api.tenant()
    assert (await api.call("GET", f"{path}/rollout", other.key)).status == 404
    assert (await api.call("POST", f"{path}/rollout/stop", other.key)).status == 404
    assert (await api.call("GET", f"{path}/rollout", tenant.key)).body["status"] == "running"


async def test_the_start_and_the_end_are_in_the_webhook_outbox(api: Api, tenant: Tenant) -> None:
    async with api.sessions() as session, session.begin():
        hook = Webhook(
            project_id=tenant.project_id,
            url="https://hooks.example.com/x",
            secret="s",
            events=["*"],
        )
        session.add(hook)
    prompt = await _canary(api, tenant)
    path = f"/v1/prompts/{prompt['id']}"
    assert (
        await api.call("POST", f"{path}/deploy", tenant.key, json={"guard": _guard()})
    ).status == 201
    assert (await api.call("POST", f"{path}/rollout/stop", tenant.key)).status == 200
    async with api.sessions() as session:
        rows = list(await session.scalars(select(Delivery).where(Delivery.webhook_id == hook.id)))
    kinds = [row.event_type for row in sorted(rows, key=lambda row: row.id)]
    assert kinds == ["deployment.created", "rollout.started", "rollout.stopped"]
    started = next(row for row in rows if row.event_type == "rollout.started")
    assert started.payload["rollout"]["candidate"] == "v2"
    assert started.payload["deployment"]["traffic"][1] == {"version": "v2", "weight": 10}
