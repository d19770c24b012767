"""Where resolve reports its exposures: a sink the composition root hands the control plane.

Every resolve answer is an exposure (this unit got this version, decided this way). The
control plane only says so; what carries the exposure to the warehouse is the serving
process's business (``promptline.server`` gives a Kafka sink from the edge), so the
control plane knows no Kafka and no edge. ``expose`` is called on the hot path: it must
return at once, never wait, and never raise.
"""

from __future__ import annotations

from typing import Protocol

from controlplane.catalog import Principal
from controlplane.resolve import Resolution


class ExposureSink(Protocol):
    """Takes one exposure per resolve answer, without waiting."""

    def expose(self, principal: Principal, resolution: Resolution, user_id: str) -> None:
        """Record that ``user_id`` of the principal's project was answered ``resolution``."""


class NoExposures:
    """The sink of a control plane that records none (tests, tools)."""

    def expose(self, principal: Principal, resolution: Resolution, user_id: str) -> None:
        """Drop it."""
