"""The guard process over a real store: it acts only with the lease, and what it decides
lands as deployments with their reasons (the looks are given, not read from ClickHouse)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from compare.sequential import Arm
from controlplane.authoring import create_prompt, push_next_version
from controlplane.catalog import PromptEntry
from controlplane.deployments import current_deployment, history, record_deployment
from controlplane.rollouts.lifecycle import start_rollout
from controlplane.rollouts.plan import GuardIn, Metric
from controlplane.store.models import Deployment, Prompt, Rollout, utcnow
from controlplane.tenancy import create_organization, create_project
from guard.decide import Action, ArmData, Look
from guard.service import Guard
from promptline.settings import Settings

Sessions = async_sessionmaker[AsyncSession]


async def _no_queries(_sql: str, _parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
    raise AssertionError("the looks are given: nothing may be read from ClickHouse")


class Looks:
    """Hands the guard a look whose candidate latency is ``worse`` times the baseline's."""

    def __init__(self, units: int = 5_000, worse: float = 1.0) -> None:
        self.units = units
        self.worse = worse
        self.seen: list[int] = []

    async def __call__(
        self,
        _run: Any,
        _entry: PromptEntry,
        rollout: Rollout,
        step: Deployment,
        _metrics: list[Metric],
        now: datetime,
        sample_ratio_p: float,
    ) -> Look:
        self.seen.append(rollout.step)
        weights = {int(entry["version"][1:]): entry["weight"] for entry in step.traffic}
        split = {number: self.units * weight // 100 for number, weight in weights.items()}
        latency = Arm(self.units, 100.0, 400.0)
        worse = Arm(self.units, 100.0 * self.worse, 400.0)
        return Look(
            now=now,
            candidate=ArmData(self.units, {Metric.LATENCY_MS: worse}),
            baseline=ArmData(self.units, {Metric.LATENCY_MS: latency}),
            split_units=split,
            split_weights=weights,
            sample_ratio_p=sample_ratio_p,
        )


async def _rollout(sessions: Sessions, ramp: list[int]) -> tuple[uuid.UUID, uuid.UUID]:
    async with sessions() as session, session.begin():
        org = await create_organization(session, f"o-{uuid.uuid4().hex[:6]}", "business")
        project = await create_project(session, org.id, "p")
        prompt = await create_prompt(session, project.id, "guarded")
        one = await push_next_version(session, prompt, "one")
        two = await push_next_version(session, prompt, "two")
        await record_deployment(
            session,
            prompt,
            traffic=[{"version": "v1", "weight": 100}],
            rules=[],
            label="",
            deployed_by="t",
        )
        guard = GuardIn.model_validate(
            {
                "candidate": 2,
                "ramp": ramp,
                "min_step_seconds": 60,
                "guardrails": [{"metric": "latency_ms", "margin": 0.05}],
            }
        )
        rollout, _ = await start_rollout(
            session,
            prompt,
            {1: one.content_hash, 2: two.content_hash},
            guard,
            label="",
            deployed_by="t",
        )
        return rollout.id, prompt.id


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _guard(sessions: Sessions, looks: Looks, clock: Clock) -> Guard:
    return Guard(sessions, _no_queries, Settings(), clock=clock, looker=looks)


async def test_a_healthy_candidate_is_ramped_to_all_traffic(sessions: Sessions) -> None:
    rollout_id, prompt_id = await _rollout(sessions, [10, 50, 100])
    clock, looks = Clock(), Looks()
    guard = _guard(sessions, looks, clock)
    first = await guard.round()
    assert first[rollout_id].action is Action.WAIT  # the step's minimum time has not passed
    assert "minimum time" in first[rollout_id].reason
    for expected in (Action.ADVANCE, Action.COMPLETE):
        clock.now += timedelta(seconds=61)
        assert (await guard.round())[rollout_id].action is expected
    assert await guard.round() == {}  # completed: nothing more to look at
    async with sessions() as session:
        rollout = await session.get(Rollout, rollout_id)
        rows = await history(session, prompt_id)
    assert rollout is not None and rollout.status == "completed"
    assert [row.traffic for row in rows[:3]] == [
        [{"version": "v2", "weight": 100}],
        [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}],
        [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
    ]
    assert rows[0].reason is not None and rows[0].reason.startswith("guarded rollout: step 3 of 3")
    assert "no guardrail regressed: latency_ms" in rows[0].reason
    assert rollout.report is not None and rollout.report["decision"]["action"] == "complete"


async def test_a_worse_candidate_is_rolled_back_with_the_reason(sessions: Sessions) -> None:
    rollout_id, prompt_id = await _rollout(sessions, [10, 50, 100])
    guard = _guard(sessions, Looks(worse=1.2), Clock())
    decision = (await guard.round())[rollout_id]
    assert decision.action is Action.ROLLBACK
    async with sessions() as session:
        current = await current_deployment(session, prompt_id)
        rollout = await session.get(Rollout, rollout_id)
    assert current is not None and current.traffic == [{"version": "v1", "weight": 100}]
    assert current.deployed_by == "guard" and current.rollout_id == rollout_id
    assert current.reason is not None
    assert current.reason.startswith("guarded rollout rolled back: latency_ms regressed")
    assert "+20.00%" in current.reason and "interval [" in current.reason
    assert rollout is not None and (rollout.status, rollout.outcome) == (
        "rolled_back",
        decision.reason,
    )


async def test_only_the_lease_holder_acts(sessions: Sessions) -> None:
    rollout_id, _prompt = await _rollout(sessions, [10, 100])
    clock = Clock()
    first, second = Looks(), Looks()
    one, two = _guard(sessions, first, clock), _guard(sessions, second, clock)
    assert rollout_id in await one.round()
    assert await two.round() == {}
    assert (first.seen, second.seen) == ([0], [])
    await one.lease.release()
    assert rollout_id in await two.round()
    assert await one.round() == {}  # the other holds it now


async def test_a_change_by_hand_in_the_meantime_wins(sessions: Sessions) -> None:
    rollout_id, prompt_id = await _rollout(sessions, [10, 100])

    class ByHand(Looks):
        async def __call__(self, *args: Any) -> Look:
            look = await super().__call__(*args)
            async with sessions() as session, session.begin():
                prompt = await session.get(Prompt, prompt_id)
                assert prompt is not None
                await record_deployment(
                    session,
                    prompt,
                    traffic=[{"version": "v2", "weight": 100}],
                    rules=[],
                    label="",
                    deployed_by="me",
                )
            return look

    first = _guard(sessions, ByHand(worse=1.5), Clock())
    await first.round()
    await first.lease.release()
    async with sessions() as session:
        current = await current_deployment(session, prompt_id)
        rows = list(
            await session.scalars(select(Deployment).where(Deployment.deployed_by == "guard"))
        )
    assert current is not None and current.deployed_by == "me"
    assert rows == []  # the guard's rollback was dropped: the traffic was no longer its own
    await _guard(sessions, Looks(), Clock()).round()
    async with sessions() as session:
        rollout = await session.get(Rollout, rollout_id)
    assert rollout is not None and rollout.status == "stopped"
    assert rollout.outcome == "ended by hand (unknown): traffic changed outside the guard"


@pytest.mark.parametrize("on_deadline", ["hold", "rollback"])
async def test_the_deadline_without_evidence(sessions: Sessions, on_deadline: str) -> None:
    rollout_id, prompt_id = await _rollout(sessions, [10, 100])
    clock = Clock()
    clock.now += timedelta(days=8)  # past the default deadline of a week
    guard = Guard(
        sessions,
        _no_queries,
        Settings(guard_on_deadline=on_deadline),
        clock=clock,
        looker=Looks(units=10),
    )
    decision = (await guard.round())[rollout_id]
    assert decision.action is (Action.HOLD if on_deadline == "hold" else Action.ROLLBACK)
    assert "100 units on the candidate (has 10)" in decision.reason
    async with sessions() as session:
        rollout = await session.get(Rollout, rollout_id)
        current = await current_deployment(session, prompt_id)
    assert rollout is not None and rollout.status == (
        "held" if on_deadline == "hold" else "rolled_back"
    )
    assert current is not None
    expected = 90 if on_deadline == "hold" else 100
    assert current.traffic[0] == {"version": "v1", "weight": expected}
