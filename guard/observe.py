"""What one look at a rollout rests on, read from ClickHouse.

Per arm since the rollout started: the distinct units exposed (exact, from the exposures)
and each guardrail metric's count, mean and variance (compare's figures, attributed to
versions as compare attributes them); and the distinct units the step in force decided by
its weighted split, per version, for the sample-ratio check.
"""

from __future__ import annotations

from datetime import datetime

from compare.exposures import exposure_units
from compare.queries import RunQuery, Scope, read_figures
from compare.report import VersionFigures, attribute
from compare.sequential import Arm
from compare.window import Window
from controlplane.catalog import PromptEntry
from controlplane.deployments import split_of
from controlplane.rollouts.plan import Metric
from controlplane.store.models import Deployment, Rollout
from guard.decide import ArmData, Look


def metric_arm(figures: VersionFigures | None, metric: Metric) -> Arm | None:
    """A version's observations of one guardrail metric, or None without any."""
    if figures is None:
        return None
    if metric is Metric.POSITIVE_RATE:
        return Arm.from_rate(figures.votes.positive, figures.votes.total)
    moments = {
        Metric.LATENCY_MS: figures.latency,
        Metric.COST_USD: figures.cost,
        Metric.SCORE: figures.score,
    }[metric]
    return Arm.from_moments(moments)


async def observe(
    run: RunQuery,
    entry: PromptEntry,
    rollout: Rollout,
    step: Deployment,
    metrics: list[Metric],
    now: datetime,
    sample_ratio_p: float,
) -> Look:
    """The look at ``rollout`` now: its arms since it started, and its step's split units."""
    since = rollout.started_at
    scope = Scope(entry.project_id, entry.id, Window(since, None))
    versions = attribute(entry, await read_figures(run, scope)).versions
    units = await exposure_units(run, entry.project_id, entry.id, since)
    split = await exposure_units(
        run,
        entry.project_id,
        entry.id,
        rollout.step_started_at,
        deployment_ids=[step.id],
        by_split=True,
    )

    def arm(number: int) -> ArmData:
        figures = versions.get((number, None))
        counted = units.get(number)
        return ArmData(
            units=counted.units if counted is not None else 0,
            metrics={metric: metric_arm(figures, metric) for metric in metrics},
        )

    weights = {number: weight for number, weight in split_of(step.traffic) if weight > 0}
    return Look(
        now=now,
        candidate=arm(rollout.candidate),
        baseline=arm(rollout.baseline),
        split_units={number: (split[number].units if number in split else 0) for number in weights},
        split_weights=weights,
        sample_ratio_p=sample_ratio_p,
    )
