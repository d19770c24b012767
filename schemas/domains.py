"""The domain of every number that reaches a ClickHouse column: what the warehouse can hold.

A value the warehouse cannot hold must be refused where it arrives, never discovered by
an insert: a latency the hourly view's DDSketch refuses (above ~1.762e308) fails every
insert of its block, and a sum of squares that overflows to infinity, or a square that
underflows to 0, is kept in the aggregates for good. The bounds are wide for any real
call and narrow enough that no raw column, view, sketch, sum or sum of squares can
overflow or lose the value; docs/edge.md, "Numeric domains", has the arithmetic. The edge
refuses what is outside (each route with its own status), and the Kafka record models
carry the same types, so a worker dead-letters such a record instead of inserting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, StrictFloat
from pydantic_core import PydanticCustomError

SMALLEST_MAGNITUDE = 1e-100
"""The smallest non-zero magnitude: its square (1e-200) is still a normal double."""
LATENCY_MS_MAX = 86_400_000.0
"""A day, in milliseconds."""
COST_USD_MAX = 1_000_000.0
SCORE_MAX = 1_000_000_000.0


@dataclass(frozen=True, slots=True)
class Domain:
    """0 (either sign), or a magnitude from SMALLEST_MAGNITUDE to ``high``."""

    high: float
    signed: bool
    meaning: str

    @property
    def message(self) -> str:
        """The sentence a client reads after the field's name."""
        positive = f"from {SMALLEST_MAGNITUDE:g} to {self.high:.0f}"
        if self.signed:
            negative = f"from -{self.high:.0f} to -{SMALLEST_MAGNITUDE:g}"
            return f"must be 0, or {positive}, or {negative} ({self.meaning})"
        return f"must be 0, or {positive} ({self.meaning})"

    def holds(self, value: float) -> bool:
        """Whether ``value`` is in the domain (never NaN nor an infinity)."""
        if value == 0:
            return True  # -0.0 too: stored as sent, summed and sketched as zero
        if value < 0 and not self.signed:
            return False
        return SMALLEST_MAGNITUDE <= abs(value) <= self.high

    def check(self, value: float) -> float:
        """``value`` unchanged, or the validation error that names the domain."""
        if not self.holds(value):
            raise PydanticCustomError("number_domain", self.message)
        return value


LATENCY_MS = Domain(LATENCY_MS_MAX, signed=False, meaning="milliseconds: at most a day")
COST_USD = Domain(COST_USD_MAX, signed=False, meaning="US dollars: at most a million")
SCORE = Domain(SCORE_MAX, signed=True, meaning="any scale, up to a billion either way")

LatencyMs = Annotated[StrictFloat, AfterValidator(LATENCY_MS.check)]
CostUsd = Annotated[StrictFloat, AfterValidator(COST_USD.check)]
Score = Annotated[StrictFloat, AfterValidator(SCORE.check)]
