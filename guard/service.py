"""The guard process (``promptline guard``): every few seconds, every guarded rollout.

It holds the lease (``guard.lease``) to act; a process without it only waits its turn, so
several can run for availability. Each round reads what each running rollout rests on
(``guard.observe``), decides (``guard.decide``) and writes the decision through
``controlplane.rollouts.lifecycle``, which refuses it if a person changed the traffic
meanwhile. A rollout whose data cannot be read this round (ClickHouse down) is skipped,
not decided: the report's ``evaluated_at`` says how old the last look is. The same
process delivers webhooks from the outbox (``controlplane.webhooks.delivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from compare.queries import RunQuery
from compare.warehouse import Warehouse
from controlplane.catalog import PromptEntry, VersionEntry
from controlplane.deployments import current_deployment
from controlplane.rollouts import lifecycle
from controlplane.rollouts.lifecycle import RolloutChanged
from controlplane.rollouts.plan import GuardIn, Metric, OnDeadline
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.models import (
    Deployment,
    Prompt,
    PromptVersion,
    Rollout,
    RolloutStatus,
    utcnow,
)
from controlplane.times import aware
from controlplane.transactions import write
from controlplane.webhooks.delivery import WebhookDelivery
from guard.decide import Action, Decision, Look, Position, decide
from guard.lease import Lease
from guard.observe import observe
from promptline.settings import Settings

log = logging.getLogger(__name__)

Looker = Callable[
    [RunQuery, PromptEntry, Rollout, Deployment, list[Metric], datetime, float], Awaitable[Look]
]
"""Reads one look at a rollout (``guard.observe.observe``; tests pass their own)."""


class Guard:
    """Evaluates every running rollout once per :meth:`round`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        run: RunQuery,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        looker: Looker = observe,
    ) -> None:
        self._sessions = sessions
        self._run = run
        self._settings = settings
        self._clock = clock
        self._observe = looker
        self.lease = Lease(sessions, settings.guard_lease_seconds)

    async def round(self) -> dict[uuid.UUID, Decision]:
        """One look at every running rollout, if this process holds the lease."""
        if not await self.lease.renew():
            return {}
        async with self._sessions() as session:
            running = list(
                await session.scalars(
                    select(Rollout.id).where(Rollout.status == RolloutStatus.RUNNING.value)
                )
            )
        decisions: dict[uuid.UUID, Decision] = {}
        for rollout_id in running:
            if not self.lease.held:
                break
            try:
                decision = await self.evaluate(rollout_id)
            except Exception:
                log.exception("guard: rollout %s could not be evaluated this round", rollout_id)
                continue
            if decision is not None:
                decisions[rollout_id] = decision
        return decisions

    async def evaluate(self, rollout_id: uuid.UUID) -> Decision | None:
        """Look at one rollout and act on what the look says; None if it no longer runs."""
        async with self._sessions() as session:
            rollout = await session.get(Rollout, rollout_id)
            if rollout is None or rollout.status != RolloutStatus.RUNNING.value:
                return None
            prompt = await session.get(Prompt, rollout.prompt_id)
            step = await session.get(Deployment, rollout.deployment_id)
            current = await current_deployment(session, rollout.prompt_id)
            versions = list(
                await session.scalars(
                    select(PromptVersion).where(PromptVersion.prompt_id == rollout.prompt_id)
                )
            )
        if prompt is None or step is None:
            return None
        if current is None or current.id != step.id:
            await self._end_outside(prompt, rollout_id)
            return None
        plan = GuardIn.model_validate(rollout.plan)
        now = self._clock()
        look = await self._observe(
            self._run,
            _entry(prompt, versions),
            rollout,
            step,
            [guardrail.metric for guardrail in plan.guardrails],
            now,
            _running_p(rollout),
        )
        position = Position(
            step=rollout.step,
            step_started_at=aware(rollout.step_started_at),
            deadline=aware(plan.deadline) if plan.deadline is not None else now,
            on_deadline=plan.on_deadline or OnDeadline(self._settings.guard_on_deadline),
        )
        decision = decide(plan, position, look, alpha=self._settings.guard_alpha)
        decision.report["deployment_id"] = str(step.id)
        if not self.lease.held:
            return None
        await self._apply(prompt, rollout_id, decision)
        return decision

    async def _apply(self, prompt: Prompt, rollout_id: uuid.UUID, decision: Decision) -> None:
        report, reason = decision.report, decision.reason

        async def work(session: AsyncSession) -> None:
            fresh = await session.get(Prompt, prompt.id)
            assert fresh is not None
            if decision.action is Action.WAIT:
                await lifecycle.note(session, rollout_id, report)
            elif decision.action in (Action.ADVANCE, Action.COMPLETE):
                await lifecycle.advance(session, fresh, rollout_id, reason, report)
            elif decision.action is Action.ROLLBACK:
                await lifecycle.roll_back(
                    session,
                    fresh,
                    rollout_id,
                    reason,
                    report,
                    sample_ratio=decision.sample_ratio_failed,
                )
            else:
                await lifecycle.hold(session, fresh, rollout_id, reason, report)

        try:
            await write(self._sessions, work)
        except RolloutChanged:
            log.info("guard: rollout %s changed meanwhile; its decision is dropped", rollout_id)
            return
        if decision.action is not Action.WAIT:
            log.info("guard: rollout %s: %s: %s", rollout_id, decision.action.value, reason)

    async def _end_outside(self, prompt: Prompt, rollout_id: uuid.UUID) -> None:
        """Traffic changed without the routes (by hand in the store): the guard lets go."""

        async def work(session: AsyncSession) -> None:
            fresh = await session.get(Prompt, prompt.id)
            assert fresh is not None
            await lifecycle.end_by_hand(
                session, fresh, "unknown", "traffic changed outside the guard"
            )

        await write(self._sessions, work)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``guard_interval_seconds`` until ``stop`` is set."""
        interval = self._settings.guard_interval_seconds
        while not stop.is_set():
            try:
                await self.round()
            except Exception:
                log.exception("guard: a round failed (the store unreachable?); trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        with contextlib.suppress(Exception):
            await self.lease.release()


def _running_p(rollout: Rollout) -> float:
    """The step's sequential sample-ratio p-value so far (1 at a new step)."""
    report: dict[str, Any] = rollout.report or {}
    if report.get("deployment_id") != str(rollout.deployment_id):
        return 1.0
    value = report.get("sample_ratio", {}).get("p_value")
    return float(value) if isinstance(value, int | float) else 1.0


def _entry(prompt: Prompt, versions: list[PromptVersion]) -> PromptEntry:
    entries = [VersionEntry(row.id, row.number, row.content_hash) for row in versions]
    return PromptEntry(
        id=prompt.id,
        project_id=prompt.project_id,
        name=prompt.name,
        versions_by_number={entry.number: entry for entry in entries},
        versions_by_hash={entry.content_hash: entry for entry in entries},
    )


async def run_guard(settings: Settings, stop: asyncio.Event) -> None:
    """The guard and the webhook deliverer, until ``stop`` is set."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    warehouse = Warehouse(settings)
    guard = Guard(sessions, warehouse.rows, settings)
    delivery = WebhookDelivery(sessions, settings)
    try:
        log.info("guard running (every %.1f s)", settings.guard_interval_seconds)
        async with asyncio.TaskGroup() as group:
            group.create_task(guard.run(stop))
            group.create_task(delivery.run(stop))
    finally:
        await delivery.close()
        await warehouse.close()
        await engine.dispose()
        log.info("guard stopped")


def main(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT."""

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await run_guard(settings, stop)

    asyncio.run(_main())
    return 0
