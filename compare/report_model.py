"""The compare answer (``compare.report``) as pydantic models, for the API document only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    """Exactly the fields the handler writes: a field added there and not here fails a test."""

    model_config = ConfigDict(extra="forbid")


class Latency(_Answer):
    """Milliseconds; percentiles from a DDSketch with 1% relative accuracy."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class Cost(_Answer):
    """US dollars."""

    count: int
    total: float | None
    mean: float | None


class Score(_Answer):
    """The client's scores."""

    count: int
    mean: float | None


class Signals(_Answer):
    """Thumbs up and down attributed to the version."""

    positive: int
    negative: int
    total: int
    positive_rate: float | None


class Figures(_Answer):
    """One version's figures over the window (or one bucket of it)."""

    events: int
    linked_traces: int = Field(
        description=(
            "Distinct traces among the usage links, from a sketch (uniqCombined64): exact below"
            " 4,096 traces, within about 0.5% beyond. A displayed count; no statistic uses it."
        )
    )
    usage_links: int = Field(description="Usage links (trace, span) recorded, exact.")
    exposures: int = Field(
        description="Resolve answers (and client-reported exposures) that served the version."
    )
    exposed_units: int = Field(description="Distinct units (users) among them, exact.")
    latency_ms: Latency
    cost_usd: Cost
    score: Score
    signals: Signals


class Difference(_Answer):
    """A version against the baseline on one metric; ``verdict`` in its good direction."""

    difference: float
    ci95: list[float]
    p_value: float
    test: str
    verdict: Literal["better", "worse", "no_significant_difference"]


class Versus(_Answer):
    """Each metric's difference from the baseline; null when it cannot be tested."""

    positive_rate: Difference | None
    score: Difference | None
    latency_ms: Difference | None
    cost_usd: Difference | None


class SeriesPoint(Figures):
    """One bucket (``?bucket=hour|day``), from its start."""

    start: str | None


class VersionReport(Figures):
    """One version of the prompt, newest first."""

    version: int
    version_id: str
    content_hash: str
    is_baseline: bool
    vs_baseline: Versus | None
    series: list[SeriesPoint] | None = None


class Unattributed(_Answer):
    """Signals naming no version, content hash or linked trace."""

    positive: int
    negative: int


class CompareReport(_Answer):
    """Per-version analytics of a prompt, each version against the baseline."""

    name: str
    prompt_id: str
    from_: str | None = Field(alias="from")
    to: str | None
    bucket: Literal["hour", "day"] | None
    baseline: int | None
    versions: list[VersionReport]
    unattributed_signals: Unattributed
