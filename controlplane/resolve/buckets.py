"""A traffic split laid over the buckets, and the draw that picks a user's version.

The layout itself (ascending version order, and what it guarantees for canary ramps) is
documented in :mod:`controlplane.resolve.traffic`, which builds these ranges. Kept apart
from that module's pydantic validation models so that resolve's hot path can be compiled
(ARCHITECTURE.md, "Resolve's hot path is compiled").
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from controlplane.resolve.hashing import bucket


@dataclass(frozen=True, slots=True)
class BucketRanges:
    """A split laid over the buckets; ``draw`` is at most one hash and one bisect."""

    upper: tuple[int, ...]
    """Exclusive upper bucket bound of each range, ascending; the last is ``BUCKETS``."""
    numbers: tuple[int, ...]
    """The version number owning each range."""
    single: int | None = field(init=False, repr=False, compare=False)
    """The only version, when one version takes all traffic (no hash needed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "single", self.numbers[0] if len(self.numbers) == 1 else None)

    def pick(self, bucket: int) -> int:
        """The version number for a bucket in ``[0, BUCKETS)``."""
        return self.numbers[bisect_right(self.upper, bucket)]

    def draw(self, salt: str, key: str) -> int:
        """The version number for ``key`` (a user id): ``pick`` of its bucket under ``salt``.

        Resolve's hot path, so ``pick`` is written out here rather than called.
        """
        single = self.single
        if single is not None:
            return single
        return self.numbers[bisect_right(self.upper, bucket(salt, key))]

    def span(self, number: int) -> tuple[int, int]:
        """The ``[start, end)`` buckets of a version; ``(0, 0)`` if it has none."""
        start = 0
        for end, owner in zip(self.upper, self.numbers, strict=True):
            if owner == number:
                return start, end
            start = end
        return 0, 0
