"""A guarded rollout's writes: start, each step, a rollback, a hold, and its end.

Every change of traffic is a deployment row like any other (the history is the audit log),
written with ``reason`` and ``rollout_id``, in the same transaction as the rollout's own
row and the webhook deliveries announcing it (``controlplane.webhooks.outbox``): a crash
leaves either all of them or none. Every write takes the prompt's lock first and checks
that the rollout is still running and still owns the deployment in force, so a deploy or
rollback made by hand at the same moment wins cleanly: it ends the rollout
(:func:`end_by_hand`) and the guard's decision is dropped (:class:`RolloutChanged`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.authoring import lock_prompt
from controlplane.deployments import current_deployment, record_deployment, stable_version
from controlplane.ids import IdShape, encode
from controlplane.resolve.traffic import TrafficSplit, single_version
from controlplane.rollouts.plan import DEFAULT_DEADLINE_SECONDS, GuardIn
from controlplane.store.models import Deployment, Prompt, Rollout, RolloutStatus, utcnow
from controlplane.times import aware, iso
from controlplane.webhooks import events
from controlplane.webhooks.outbox import enqueue


class GuardRefused(ValueError):
    """A guard that cannot start; ``field`` names what is wrong with it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class RolloutChanged(RuntimeError):
    """The rollout ended, or traffic changed by hand, since the guard looked."""


def step_traffic(candidate: int, baseline: int, percent: int) -> list[dict[str, Any]]:
    """The split of a step: ``percent`` to the candidate, the rest to the baseline."""
    entries = (
        ((candidate, percent),)
        if percent == 100
        else ((baseline, 100 - percent), (candidate, percent))
    )
    return TrafficSplit(tuple(sorted(entries))).to_json()


async def running_rollout(session: AsyncSession, prompt_id: uuid.UUID) -> Rollout | None:
    """The prompt's rollout still under guard, if any (at most one runs per prompt)."""
    return await session.scalar(
        select(Rollout)
        .where(Rollout.prompt_id == prompt_id, Rollout.status == RolloutStatus.RUNNING.value)
        .order_by(Rollout.started_at.desc())
    )


async def latest_rollout(session: AsyncSession, prompt_id: uuid.UUID) -> Rollout | None:
    """The prompt's most recent rollout, running or ended."""
    return await session.scalar(
        select(Rollout)
        .where(Rollout.prompt_id == prompt_id)
        .order_by(Rollout.started_at.desc(), Rollout.id.desc())
    )


def rollout_json(rollout: Rollout) -> dict[str, Any]:
    """What webhooks and answers say of a rollout (no statistics: see the guard's report)."""
    plan = GuardIn.model_validate(rollout.plan)
    return {
        "rollout_id": encode(IdShape.ROLLOUT, rollout.id),
        "status": rollout.status,
        "candidate": f"v{rollout.candidate}",
        "baseline": f"v{rollout.baseline}",
        "ramp": plan.ramp,
        "step": rollout.step + 1,
        "steps": len(plan.ramp),
        "percent": plan.ramp[rollout.step],
        "deployment_id": encode(IdShape.DEPLOYMENT, rollout.deployment_id),
        "started_at": iso(rollout.started_at),
        "step_started_at": iso(rollout.step_started_at),
        "ended_at": iso(rollout.ended_at) if rollout.ended_at is not None else None,
        "outcome": rollout.outcome,
    }


async def start_rollout(
    session: AsyncSession,
    prompt: Prompt,
    versions: dict[int, str],
    guard: GuardIn,
    *,
    label: str,
    deployed_by: str,
) -> tuple[Rollout, Deployment]:
    """Check the guard against the prompt, put its first step in force, and record both.

    ``versions`` maps the prompt's version numbers to their content hashes. Ends a running
    rollout of the prompt first (a new guarded deploy replaces it, by hand).
    """
    await lock_prompt(session, prompt)
    if guard.candidate not in versions:
        raise GuardRefused(f"Version v{guard.candidate} does not exist.", "guard.candidate")
    baseline = guard.baseline
    if baseline is None:
        current = await current_deployment(session, prompt.id)
        baseline = stable_version(current) if current is not None else None
        if baseline is None:
            raise GuardRefused(
                "No stable version is in force to guard against (one version taking all "
                "traffic); name guard.baseline.",
                "guard.baseline",
            )
    elif baseline not in versions:
        raise GuardRefused(f"Version v{baseline} does not exist.", "guard.baseline")
    if versions[baseline] == versions[guard.candidate]:
        raise GuardRefused(
            f"v{guard.candidate} has the same content as the baseline v{baseline}: there is "
            "nothing to compare.",
            "guard.candidate",
        )
    now = utcnow()
    deadline = aware(guard.deadline) if guard.deadline is not None else None
    if deadline is None:
        deadline = now + timedelta(seconds=DEFAULT_DEADLINE_SECONDS)
    elif deadline <= now:
        raise GuardRefused("The deadline has already passed.", "guard.deadline")
    plan = guard.model_copy(update={"baseline": baseline, "deadline": deadline})
    await end_by_hand(session, prompt, deployed_by, "replaced by a new guarded deploy")
    rollout_id = uuid.uuid4()
    deployment = await record_deployment(
        session,
        prompt,
        traffic=step_traffic(guard.candidate, baseline, plan.ramp[0]),
        rules=[],
        label=label,
        deployed_by=deployed_by,
        reason=(
            f"guarded rollout: step 1 of {len(plan.ramp)}, {plan.ramp[0]}% to v{guard.candidate}"
        ),
        rollout_id=rollout_id,
    )
    rollout = Rollout(
        id=rollout_id,
        prompt_id=prompt.id,
        candidate=guard.candidate,
        baseline=baseline,
        plan=plan.model_dump(mode="json"),
        step=0,
        step_started_at=now,
        deployment_id=deployment.id,
        status=RolloutStatus.RUNNING.value,
        started_at=now,
        started_by=deployed_by,
    )
    session.add(rollout)
    await session.flush()
    await _announce(session, prompt, events.ROLLOUT_STARTED, rollout, deployment)
    return rollout, deployment


async def end_by_hand(
    session: AsyncSession, prompt: Prompt, actor: str, what: str
) -> Rollout | None:
    """End the prompt's running rollout because a person changed traffic; the caller holds
    the prompt's lock and writes that change in the same transaction."""
    rollout = await running_rollout(session, prompt.id)
    if rollout is None:
        return None
    _end(rollout, RolloutStatus.STOPPED, f"ended by hand ({actor}): {what}")
    await session.flush()
    await _announce(session, prompt, events.ROLLOUT_STOPPED, rollout, None)
    return rollout


async def stop(session: AsyncSession, prompt: Prompt, actor: str) -> Rollout | None:
    """``POST .../rollout/stop``: end the guard, leaving traffic as it is."""
    await lock_prompt(session, prompt)
    return await end_by_hand(
        session, prompt, actor, "the guard was stopped; traffic stays as it is"
    )


async def _owned(session: AsyncSession, prompt: Prompt, rollout_id: uuid.UUID) -> Rollout:
    """The rollout, locked with its prompt, if it still runs and owns the traffic in force."""
    await lock_prompt(session, prompt)
    rollout = await session.get(Rollout, rollout_id, populate_existing=True)
    current = await current_deployment(session, prompt.id)
    if (
        rollout is None
        or rollout.status != RolloutStatus.RUNNING.value
        or current is None
        or current.id != rollout.deployment_id
    ):
        raise RolloutChanged(f"rollout {rollout_id} no longer owns the traffic of {prompt.name}")
    return rollout


async def advance(
    session: AsyncSession,
    prompt: Prompt,
    rollout_id: uuid.UUID,
    reason: str,
    report: dict[str, Any],
) -> tuple[Rollout, Deployment]:
    """The next step of the ramp in force; at 100% the rollout is completed."""
    rollout = await _owned(session, prompt, rollout_id)
    plan = GuardIn.model_validate(rollout.plan)
    step = rollout.step + 1
    percent = plan.ramp[step]
    done = step == len(plan.ramp) - 1
    deployment = await record_deployment(
        session,
        prompt,
        traffic=step_traffic(rollout.candidate, rollout.baseline, percent),
        rules=[],
        label=f"guarded v{rollout.candidate} {percent}%",
        deployed_by="guard",
        reason=f"guarded rollout: step {step + 1} of {len(plan.ramp)}, {percent}% to "
        f"v{rollout.candidate}: {reason}",
        rollout_id=rollout.id,
    )
    now = utcnow()
    rollout.step, rollout.step_started_at, rollout.deployment_id = step, now, deployment.id
    rollout.report, rollout.evaluated_at = report, now
    if done:
        _end(rollout, RolloutStatus.COMPLETED, f"v{rollout.candidate} takes all traffic: {reason}")
    await session.flush()
    kind = events.ROLLOUT_COMPLETED if done else events.ROLLOUT_STEP
    await _announce(session, prompt, kind, rollout, deployment)
    return rollout, deployment


async def roll_back(
    session: AsyncSession,
    prompt: Prompt,
    rollout_id: uuid.UUID,
    reason: str,
    report: dict[str, Any],
    *,
    sample_ratio: bool = False,
) -> tuple[Rollout, Deployment]:
    """All traffic back to the baseline at once, with the reason on the deployment row."""
    rollout = await _owned(session, prompt, rollout_id)
    deployment = await record_deployment(
        session,
        prompt,
        traffic=single_version(rollout.baseline).to_json(),
        rules=[],
        label=f"guard rollback to v{rollout.baseline}",
        deployed_by="guard",
        reason=f"guarded rollout rolled back: {reason}",
        rollout_id=rollout.id,
    )
    rollout.deployment_id, rollout.report, rollout.evaluated_at = deployment.id, report, utcnow()
    _end(rollout, RolloutStatus.ROLLED_BACK, reason)
    await session.flush()
    if sample_ratio:
        await _announce(session, prompt, events.ROLLOUT_SAMPLE_RATIO_MISMATCH, rollout, deployment)
    await _announce(session, prompt, events.ROLLOUT_ROLLED_BACK, rollout, deployment)
    return rollout, deployment


async def hold(
    session: AsyncSession,
    prompt: Prompt,
    rollout_id: uuid.UUID,
    reason: str,
    report: dict[str, Any],
) -> Rollout:
    """The deadline passed without enough data: stay at this step and say so."""
    rollout = await _owned(session, prompt, rollout_id)
    rollout.report, rollout.evaluated_at = report, utcnow()
    _end(rollout, RolloutStatus.HELD, reason)
    await session.flush()
    await _announce(session, prompt, events.ROLLOUT_HELD, rollout, None)
    return rollout


async def note(session: AsyncSession, rollout_id: uuid.UUID, report: dict[str, Any]) -> None:
    """Keep the latest evaluation of a rollout that goes on as it is (for ``GET .../rollout``)."""
    rollout = await session.get(Rollout, rollout_id)
    if rollout is not None and rollout.status == RolloutStatus.RUNNING.value:
        rollout.report, rollout.evaluated_at = report, utcnow()


def _end(rollout: Rollout, status: RolloutStatus, outcome: str) -> None:
    rollout.status, rollout.outcome, rollout.ended_at = status.value, outcome, utcnow()


async def _announce(
    session: AsyncSession,
    prompt: Prompt,
    kind: str,
    rollout: Rollout,
    deployment: Deployment | None,
) -> None:
    data: dict[str, Any] = {
        "prompt": prompt.name,
        "prompt_id": encode(IdShape.PROMPT, prompt.id),
        "rollout": rollout_json(rollout),
    }
    if deployment is not None:
        data["deployment"] = {
            "deployment_id": encode(IdShape.DEPLOYMENT, deployment.id),
            "traffic": deployment.traffic,
            "reason": deployment.reason,
        }
    if rollout.report is not None:
        data["report"] = rollout.report
    await enqueue(session, prompt.project_id, kind, data)
