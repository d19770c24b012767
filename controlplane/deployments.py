"""Deployment history: deploying a traffic split, rolling back, and reading what is live.

Every deploy and every rollback appends a row; nothing is updated or deleted, so the
history is the audit log. The *current* deployment of a prompt is its latest row (by
``deployed_at``, then id: UUIDv7 ids are time-ordered).

Rollback returns all traffic to the most recent earlier deployment that sent 100% of
traffic to one version ("stable": its split and every targeting rule's split give that
version everything), skipping stable deployments of the version already serving
everything (they would change nothing). A canary run as a rule (100% to v1, and a rule
sending a segment to v2) is not stable, so a rollback from it restores the version the
rule's segment left. "Earlier" is earlier than the deployment
now in force; when that is itself a rollback, earlier than the deployment it restored, so
repeated rollbacks walk further back in history instead of bouncing between two states.
The new row copies no targeting rules (all traffic means all) and records the restored
deployment in ``rollback_of``. With no such deployment, :class:`NothingToRollBack`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from controlplane.authoring import lock_prompt
from controlplane.ids import IdShape, encode
from controlplane.resolve.traffic import single_version
from controlplane.store.models import Deployment, Prompt
from controlplane.store.revision import bump_revision

_NEWEST_FIRST = (Deployment.deployed_at.desc(), Deployment.id.desc())


class NothingToRollBack(ValueError):
    """No earlier deployment sent all traffic to another single version."""


@dataclass(frozen=True, slots=True)
class RolledBack:
    """The new deployment a rollback wrote, the one it restored, and the version served."""

    deployment: Deployment
    restored: Deployment
    version: int


def split_of(traffic: Sequence[Any]) -> list[tuple[int, int]]:
    """(version number, weight) pairs of a stored split (``[{"version": "v4", ...}]``)."""
    pairs: list[tuple[int, int]] = []
    for entry in traffic:
        if not isinstance(entry, dict):
            continue
        version, weight = entry.get("version"), entry.get("weight")
        if isinstance(version, str) and version[:1] in ("v", "V") and version[1:].isdigit():
            version = int(version[1:])
        if isinstance(version, int) and isinstance(weight, int) and not isinstance(weight, bool):
            pairs.append((version, weight))
    return pairs


def sole_version(traffic: Sequence[Any]) -> int | None:
    """The version taking 100% of a stored split, if one does."""
    live = [(number, weight) for number, weight in split_of(traffic) if weight > 0]
    return live[0][0] if len(live) == 1 and live[0][1] == 100 else None


def stable_version(deployment: Deployment) -> int | None:
    """The one version a deployment sends all traffic to, rules included, if there is one."""
    number = sole_version(deployment.traffic)
    if number is None or serving_versions(deployment, None) != {number}:
        return None
    return number


def serving_versions(deployment: Deployment | None, latest: int | None) -> frozenset[int]:
    """Versions that can get traffic now (seed 002's ``is_active``).

    Those weighted above 0 in the deployment in force or in one of its targeting rules; for
    a never-deployed prompt, its latest version, which resolve serves then.
    """
    if deployment is None:
        return frozenset() if latest is None else frozenset({latest})
    splits = [deployment.traffic] + [
        rule.get("traffic", []) for rule in deployment.rules or [] if isinstance(rule, dict)
    ]
    return frozenset(number for split in splits for number, weight in split_of(split) if weight > 0)


def main_version(deployment: Deployment | None, latest: int | None) -> int | None:
    """The version with the largest share (the newer on a tie), or the latest with no deploy."""
    if deployment is None:
        return latest
    live = [(weight, number) for number, weight in split_of(deployment.traffic) if weight > 0]
    return max(live)[1] if live else None


async def current_deployment(session: AsyncSession, prompt_id: uuid.UUID) -> Deployment | None:
    """The deployment in force for a prompt, or None if it was never deployed."""
    return await session.scalar(
        select(Deployment).where(Deployment.prompt_id == prompt_id).order_by(*_NEWEST_FIRST)
    )


async def current_deployments(
    session: AsyncSession, project_id: uuid.UUID
) -> dict[uuid.UUID, Deployment]:
    """The deployment in force of every deployed prompt of a project, by prompt id."""
    ranked = (
        select(
            Deployment,
            func.row_number()
            .over(partition_by=Deployment.prompt_id, order_by=_NEWEST_FIRST)
            .label("rank"),
        )
        .where(Deployment.prompt_id.in_(select(Prompt.id).where(Prompt.project_id == project_id)))
        .subquery()
    )
    latest = aliased(Deployment, ranked)
    rows = await session.scalars(select(latest).where(ranked.c.rank == 1))
    return {row.prompt_id: row for row in rows}


async def history(session: AsyncSession, prompt_id: uuid.UUID) -> list[Deployment]:
    """Every deployment of a prompt, newest first."""
    rows = await session.scalars(
        select(Deployment).where(Deployment.prompt_id == prompt_id).order_by(*_NEWEST_FIRST)
    )
    return list(rows)


async def record_deployment(
    session: AsyncSession,
    prompt: Prompt,
    *,
    traffic: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    label: str,
    deployed_by: str,
    rollback_of: uuid.UUID | None = None,
    reason: str | None = None,
    rollout_id: uuid.UUID | None = None,
) -> Deployment:
    """Append a deployment (already validated) and mark the catalog changed."""
    deployment = Deployment(
        prompt_id=prompt.id,
        label=label,
        traffic=traffic,
        rules=rules,
        deployed_by=deployed_by,
        rollback_of=rollback_of,
        reason=reason,
        rollout_id=rollout_id,
    )
    session.add(deployment)
    await session.flush()
    await bump_revision(session)
    return deployment


def rollback_target(past: Sequence[Deployment]) -> tuple[Deployment, int] | None:
    """What a rollback would restore given the history, newest first: the deployment and
    its one version, or None when there is none (module docstring)."""
    if not past:
        return None
    current = past[0]
    anchor = current.rollback_of or current.id
    position = next((i for i, row in enumerate(past) if row.id == anchor), 0)
    serving = stable_version(current)
    for candidate in past[position + 1 :]:
        number = stable_version(candidate)
        if number is not None and number != serving:
            return candidate, number
    return None


async def rollback(session: AsyncSession, prompt: Prompt, deployed_by: str) -> RolledBack:
    """Send all traffic back to the previous stable deployment's version (module docstring)."""
    await lock_prompt(session, prompt)
    past = await history(session, prompt.id)
    if not past:
        raise NothingToRollBack(f"Prompt '{prompt.name}' has never been deployed.")
    target = rollback_target(past)
    if target is None:
        raise NothingToRollBack(
            f"Prompt '{prompt.name}' has no earlier deployment that sent 100% of traffic to "
            "another version; deploy the version you want instead."
        )
    candidate, number = target
    deployment = await record_deployment(
        session,
        prompt,
        traffic=single_version(number).to_json(),
        rules=[],
        label=f"rollback to {encode(IdShape.DEPLOYMENT, candidate.id)}",
        deployed_by=deployed_by,
        rollback_of=candidate.id,
    )
    return RolledBack(deployment=deployment, restored=candidate, version=number)
