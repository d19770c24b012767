"""Extreme values of every analytics number, each with whether its domain holds it.

The edge tests send them one by one and in batches; the end-to-end test sends them
through Kafka to ClickHouse. Each field gets the doubles at its bounds and just past them
(one ulp), the largest and smallest doubles, subnormals and negative zero.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass

from schemas.domains import COST_USD, LATENCY_MS, SCORE, SMALLEST_MAGNITUDE, Domain

DOMAINS = {"latency_ms": LATENCY_MS, "cost_usd": COST_USD, "score": SCORE}

LARGEST = sys.float_info.max
SMALLEST_NORMAL = sys.float_info.min
LARGEST_SUBNORMAL = math.nextafter(SMALLEST_NORMAL, 0)
SMALLEST_SUBNORMAL = math.ulp(0.0)
SQUARE_UNDERFLOWS = 1e-154
"""Non-zero, but its square is below the smallest normal double."""


@dataclass(frozen=True, slots=True)
class Extreme:
    """One value of one field, and whether the edge takes it."""

    field: str
    value: float
    accepted: bool

    def __str__(self) -> str:
        verdict = "ok" if self.accepted else "refused"
        return f"{self.field}={self.value!r}:{verdict}"


def bits(value: float) -> bytes:
    """The double's eight bytes: equal bits, not merely equal values (0.0 is not -0.0)."""
    return struct.pack("<d", value)


def as_uint64(value: float) -> int:
    """The double's bits as ClickHouse's ``reinterpretAsUInt64`` reads them."""
    number: int = struct.unpack("<Q", bits(value))[0]
    return number


def _magnitudes(domain: Domain) -> list[tuple[float, bool]]:
    """Non-negative values at, inside and just past the domain's bounds."""
    return [
        (SMALLEST_MAGNITUDE, True),
        (math.nextafter(SMALLEST_MAGNITUDE, 1), True),
        (math.nextafter(SMALLEST_MAGNITUDE, 0), False),
        (1.0, True),
        (domain.high, True),
        (math.nextafter(domain.high, 0), True),
        (math.nextafter(domain.high, math.inf), False),
        (LARGEST, False),
        (SMALLEST_NORMAL, False),
        (LARGEST_SUBNORMAL, False),
        (SMALLEST_SUBNORMAL, False),
        (SQUARE_UNDERFLOWS, False),
    ]


def extremes(field: str) -> list[Extreme]:
    """Every extreme value of ``field``, both zeros and both signs included."""
    domain = DOMAINS[field]
    cases = [Extreme(field, 0.0, True), Extreme(field, -0.0, True)]
    for magnitude, inside in _magnitudes(domain):
        cases.append(Extreme(field, magnitude, inside))
        cases.append(Extreme(field, -magnitude, inside and domain.signed))
    return cases


ALL_EXTREMES = [case for field in DOMAINS for case in extremes(field)]
