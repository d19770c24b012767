"""A seeded rollout simulator: traffic in, ``guard.decide`` at every look, its action applied.

It plays one guarded rollout on a fake clock. Between two looks ``units_per_look`` new units
arrive; each is assigned to the candidate with the step's percent (a binomial draw), makes
one request (a latency, lognormal, and a score, normal) and leaves a thumbs-up or -down with
some probability (positive with another). The simulator keeps, per arm, the distinct units
and n, Σx, Σx² of each metric since the rollout started (what the hourly aggregates hold),
and, per step, the units its split decided. A version can lose a share of its exposures
(the units are served but never reported): the broken split the sample-ratio check is for.

At every look it builds a ``Look`` and a ``Position`` and applies ``decide``'s action as the
guard process does: WAIT carries the sample-ratio running minimum to the next look; ADVANCE
starts the next step (its own split counts, the running minimum back to 1); COMPLETE,
ROLLBACK and HOLD end the rollout.

An optional naive check runs on the same data at every look, to measure what acting on
compare's fixed-horizon tests would do: see ``naive_rollback``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from compare.sample_ratio import sample_ratio
from compare.sequential import Arm
from compare.stats import Difference, Moments, two_proportions, welch
from controlplane.rollouts.plan import DEFAULT_DEADLINE_SECONDS, GuardIn, Metric, OnDeadline
from guard.decide import POSITIVES_MINIMUM, Action, ArmData, Decision, Look, Position, decide

START = datetime(2026, 12, 1, tzinfo=UTC)
BASELINE = 1
CANDIDATE = 2


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one version's units behave."""

    latency_ms: float = 800.0
    """Mean latency; lognormal, so right-skewed as real latencies are."""
    latency_spread: float = 0.5
    """Standard deviation of the latency's logarithm."""
    score: float = 0.7
    score_sd: float = 0.2
    feedback_share: float = 0.6
    """Share of units that leave a positive or negative signal."""
    positive_share: float = 0.6
    exposures_lost: float = 0.0
    """Share of this version's units whose exposure is never recorded."""

    def slower(self, factor: float) -> Behaviour:
        """The same, with the mean latency multiplied by ``factor``."""
        return replace(self, latency_ms=self.latency_ms * factor)


@dataclass(slots=True)
class Tally:
    """One arm since the rollout started: units seen, and each metric's aggregates."""

    units: int = 0
    latency: Moments = field(default_factory=Moments)
    score: Moments = field(default_factory=Moments)
    signals: int = 0
    positives: int = 0

    def serve(self, rng: np.random.Generator, behaviour: Behaviour, units: int) -> int:
        """``units`` new units make their requests; returns those whose exposure is recorded."""
        log_mean = math.log(behaviour.latency_ms) - behaviour.latency_spread**2 / 2
        normal = rng.standard_normal((2, units))
        latency = np.exp(log_mean + behaviour.latency_spread * normal[0])
        score = behaviour.score + behaviour.score_sd * normal[1]
        signal = behaviour.feedback_share
        positives, negatives, _ = rng.multinomial(
            units,
            [
                signal * behaviour.positive_share,
                signal * (1 - behaviour.positive_share),
                1 - signal,
            ],
        )
        lost = int(rng.binomial(units, behaviour.exposures_lost)) if behaviour.exposures_lost else 0
        self.latency += Moments(units, float(latency.sum()), float(latency @ latency))
        self.score += Moments(units, float(score.sum()), float(score @ score))
        self.signals += int(positives + negatives)
        self.positives += int(positives)
        seen = units - lost
        self.units += seen
        return seen

    def moments(self, metric: Metric) -> Moments | None:
        """n, Σx, Σx² of a mean metric; None for the rate and metrics not simulated."""
        return {Metric.LATENCY_MS: self.latency, Metric.SCORE: self.score}.get(metric)

    def arm_data(self) -> ArmData:
        """What the guard knows of this arm."""
        return ArmData(
            self.units,
            {
                Metric.LATENCY_MS: Arm.from_moments(self.latency),
                Metric.SCORE: Arm.from_moments(self.score),
                Metric.POSITIVE_RATE: Arm.from_rate(self.positives, self.signals),
            },
        )


@dataclass(frozen=True, slots=True)
class Scenario:
    """Two versions' behaviour, the traffic, and how often the guard looks."""

    candidate: Behaviour = Behaviour()
    baseline: Behaviour = Behaviour()
    units_per_look: int = 400
    look_seconds: int = 300
    max_looks: int = 500


NaiveCheck = Callable[[GuardIn, Look, Tally, Tally], bool]
"""(plan, look, candidate tally, baseline tally) -> whether the naive check would roll back."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a rollout ended."""

    decision: Decision
    """The last decision: COMPLETE, ROLLBACK or HOLD."""
    looks: int
    steps: tuple[int, ...]
    """The percent of every step that ran, in order."""
    naive_look: int | None = None
    """The first look at which the naive check would have rolled back, if any."""

    @property
    def action(self) -> Action:
        """The action that ended the rollout."""
        return self.decision.action

    @property
    def naive_rolled_back(self) -> bool:
        """Whether the naive policy (the guard, plus rolling back on the naive check) would have
        rolled back: its data are the guard's up to its first hit, so this is exact."""
        return self.naive_look is not None or self.action is Action.ROLLBACK


def play(
    plan: GuardIn,
    scenario: Scenario,
    seed: int | tuple[int, ...],
    *,
    naive: NaiveCheck | None = None,
) -> Outcome:
    """Play one rollout to its end (module docstring); the seed fixes all the traffic."""
    rng = np.random.default_rng(seed)
    deadline = plan.deadline or START + timedelta(seconds=DEFAULT_DEADLINE_SECONDS)
    on_deadline = plan.on_deadline or OnDeadline.HOLD
    candidate, baseline = Tally(), Tally()
    now = started = START
    step, running_p, naive_look = 0, 1.0, None
    split = {BASELINE: 0, CANDIDATE: 0}
    steps = [plan.ramp[0]]
    for count in range(1, scenario.max_looks + 1):
        now += timedelta(seconds=scenario.look_seconds)
        percent = plan.ramp[step]
        to_candidate = int(rng.binomial(scenario.units_per_look, percent / 100))
        split[CANDIDATE] += candidate.serve(rng, scenario.candidate, to_candidate)
        split[BASELINE] += baseline.serve(
            rng, scenario.baseline, scenario.units_per_look - to_candidate
        )
        look = Look(
            now=now,
            candidate=candidate.arm_data(),
            baseline=baseline.arm_data(),
            split_units=dict(split),
            split_weights={BASELINE: 100 - percent, CANDIDATE: percent},
            sample_ratio_p=running_p,
        )
        decision = decide(plan, Position(step, started, deadline, on_deadline), look)
        if naive is not None and naive_look is None and naive(plan, look, candidate, baseline):
            naive_look = count
        if decision.action is Action.WAIT:
            running_p = decision.report["sample_ratio"]["p_value"]
        elif decision.action is Action.ADVANCE:
            step, started, running_p = step + 1, now, 1.0
            split = {BASELINE: 0, CANDIDATE: 0}
            steps.append(plan.ramp[step])
        else:
            return Outcome(decision, count, tuple(steps), naive_look)
    raise AssertionError(f"the rollout did not end in {scenario.max_looks} looks")


def naive_rollback(plan: GuardIn, look: Look, candidate: Tally, baseline: Tally) -> bool:
    """What someone refreshing compare and acting on the first alarm would do.

    On any guardrail past the guard's own minimums: compare's fixed-horizon test (Welch for
    means, the two-proportion z-test for the positive rate) at two-sided p < 0.05 with the
    candidate on the worse side; or the split's chi-squared test at p < 0.001. Margins are
    ignored: meant for plans whose margins are 0.
    """
    for guardrail in plan.guardrails:
        test = _fixed_horizon(guardrail.metric, candidate, baseline, plan.min_events)
        if test is None or not test.significant:
            continue
        if (test.difference > 0) == guardrail.lower_is_better and test.difference != 0:
            return True
    versions = sorted(number for number, weight in look.split_weights.items() if weight > 0)
    if len(versions) < 2:
        return False
    return sample_ratio(
        [look.split_units[number] for number in versions],
        [float(look.split_weights[number]) for number in versions],
    ).mismatch


def _fixed_horizon(
    metric: Metric, candidate: Tally, baseline: Tally, minimum: int
) -> Difference | None:
    if metric is Metric.POSITIVE_RATE:
        positives = min(POSITIVES_MINIMUM, minimum)
        if min(candidate.signals, baseline.signals) < minimum:
            return None
        if min(candidate.positives, baseline.positives) < positives:
            return None
        return two_proportions(
            candidate.positives, candidate.signals, baseline.positives, baseline.signals
        )
    version, base = candidate.moments(metric), baseline.moments(metric)
    if version is None or base is None or min(version.count, base.count) < minimum:
        return None
    return welch(version, base)
