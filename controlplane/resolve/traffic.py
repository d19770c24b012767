"""Traffic splits: version references, validation, and the bucket layout that routes users.

Layout and what it guarantees
-----------------------------
A split with integer weights summing to 100 is laid over the buckets ``[0, 10000)`` in
ascending *version number* order, whatever order the request listed it in, each version
taking ``weight * 100`` contiguous buckets. A user in bucket ``b`` gets the version whose
range holds ``b``. So the oldest version sits at the bottom, and the newest (the canary)
occupies ``[10000 - 100 * w_newest, 10000)``: its range grows down from the top end.

- Two versions (old, new): raising the new one's weight moves users only from old onto
  new, lowering it only from new back onto old; nobody else moves. This is the canary ramp.
- Any number of versions: the newest version's range is ``[10000 - 100 * w, 10000)``
  whatever the other weights are, so its users are monotone in its own weight: a ramp up
  only adds users to it, a ramp down only removes them. The same holds for the oldest
  version (``[0, 100 * w)``), and for any version whose total weight of older versions (or
  of newer versions) stays the same across the change. A middle version whose neighbours
  on *both* sides change weight slides and can swap users with them; with 3+ versions,
  change one pair of weights at a time to keep every move one-directional.
- A version with weight 0 owns no buckets and is the same as leaving it out.

Version references
------------------
A traffic entry names a version as ``"v4"`` (seed 001), ``4`` or ``"4"``, or by its full
content hash ``"sha256:<64 hex>"``; all become a version number. Splits are stored
canonically as ``[{"version": "v4", "weight": 90}, ...]`` in the order given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, PlainValidator, Strict, TypeAdapter, ValidationError

from controlplane.resolve.buckets import BucketRanges
from controlplane.resolve.errors import (
    InvalidTraffic,
    UnknownVersion,
    WeightMismatch,
)
from controlplane.resolve.hashing import BUCKETS, BUCKETS_PER_PERCENT

MAX_ENTRIES = 100
_NUMBER_REF = re.compile(r"[vV]?([1-9][0-9]{0,8})")
_HASH_REF = re.compile(r"sha256:[0-9a-f]{64}")


def _version_ref_shape(value: Any) -> str | int:
    """Accept a string or a (non-bool) integer; the prompt's versions are checked later."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise ValueError("a version is 'vN', a version number or 'sha256:<hex>'")


class TrafficEntrySpec(BaseModel):
    """One entry of a split as sent and stored: ``{"version": "v4", "weight": 90}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[str | int, PlainValidator(_version_ref_shape)]
    weight: Annotated[int, Strict()]


_ENTRIES = TypeAdapter(list[TrafficEntrySpec])


class VersionLike(Protocol):
    """Anything with a number and a content hash: catalog entries and ORM rows alike."""

    @property
    def number(self) -> int: ...

    @property
    def content_hash(self) -> str: ...


class VersionSet:
    """The versions a prompt has, to check references against."""

    __slots__ = ("_by_hash", "_numbers")

    def __init__(self, versions: Iterable[VersionLike]) -> None:
        self._numbers: set[int] = set()
        self._by_hash: dict[str, int] = {}
        for version in versions:
            self._numbers.add(version.number)
            self._by_hash[version.content_hash] = version.number

    def __contains__(self, number: object) -> bool:
        return number in self._numbers

    @property
    def latest(self) -> int | None:
        """The greatest version number, or None for a prompt without versions."""
        return max(self._numbers, default=None)

    def number_of_hash(self, content_hash: str) -> int | None:
        """The number of the version with that content hash, if any."""
        return self._by_hash.get(content_hash)


def format_version(number: int) -> str:
    """The public spelling of a version number: ``v4``."""
    return f"v{number}"


def parse_version_ref(ref: str | int, versions: VersionSet, *, field: str | None = None) -> int:
    """The version number that ``ref`` (``"v4"``, ``4``, ``"4"``, ``"sha256:..."``) names.

    Raises :class:`InvalidTraffic` for a malformed reference and :class:`UnknownVersion`
    for a well-formed one that names no version of the prompt.
    """
    number: int | None
    if isinstance(ref, bool):
        raise InvalidTraffic(_bad_ref_message(ref), field=field)
    if isinstance(ref, int):
        if ref < 1:
            raise InvalidTraffic(_bad_ref_message(ref), field=field)
        number = ref
    elif match := _NUMBER_REF.fullmatch(ref.strip()):
        number = int(match.group(1))
    elif _HASH_REF.fullmatch(ref.strip().lower()):
        number = versions.number_of_hash(ref.strip().lower())
        if number is None:
            raise UnknownVersion(f"Version {ref} does not exist.", field=field)
        return number
    else:
        raise InvalidTraffic(_bad_ref_message(ref), field=field)
    if number not in versions:
        raise UnknownVersion(f"Version {format_version(number)} does not exist.", field=field)
    return number


def _bad_ref_message(ref: object) -> str:
    return f"Version must be 'vN', a version number or 'sha256:<hex>'. Got {ref!r}."


@dataclass(frozen=True, slots=True)
class TrafficSplit:
    """A validated split: (version number, weight) pairs in the order given."""

    entries: tuple[tuple[int, int], ...]

    @property
    def numbers(self) -> frozenset[int]:
        """The versions that get traffic (weight above 0)."""
        return frozenset(number for number, weight in self.entries if weight > 0)

    def to_json(self) -> list[dict[str, Any]]:
        """The canonical stored and echoed form: ``[{"version": "v4", "weight": 90}]``."""
        return [
            {"version": format_version(number), "weight": weight} for number, weight in self.entries
        ]

    def layout(self) -> BucketRanges:
        """Ranges in ascending version order (see the module docstring for why)."""
        upper: list[int] = []
        numbers: list[int] = []
        total = 0
        for number, weight in sorted(self.entries):
            if weight > 0:
                total += weight * BUCKETS_PER_PERCENT
                upper.append(total)
                numbers.append(number)
        if total != BUCKETS:
            raise WeightMismatch(f"Traffic weights must sum to 100. Got {total // 100}.")
        return BucketRanges(tuple(upper), tuple(numbers))


def single_version(number: int) -> TrafficSplit:
    """All traffic to one version."""
    return TrafficSplit(((number, 100),))


def parse_traffic(raw: Any, versions: VersionSet, *, field: str = "traffic") -> TrafficSplit:
    """Validate a split as sent to the deploy route (or read back from storage).

    Raises, in this order of checks: :class:`InvalidTraffic` (not a list of
    ``{version, weight}`` objects with integer weights, a negative weight, a version twice),
    :class:`UnknownVersion`, :class:`WeightMismatch` ("Traffic weights must sum to 100.
    Got 95.", the exact seed 001 text).
    """
    try:
        entries = _ENTRIES.validate_python(raw)
    except ValidationError as exc:
        message, path = first_error(exc, field)
        raise InvalidTraffic(message, field=path) from None
    return check_entries(entries, versions, field=field)


def check_entries(
    entries: Sequence[TrafficEntrySpec], versions: VersionSet, *, field: str = "traffic"
) -> TrafficSplit:
    """The checks of :func:`parse_traffic` on entries that already have the right shape."""
    if len(entries) > MAX_ENTRIES:
        raise InvalidTraffic(f"At most {MAX_ENTRIES} traffic entries are allowed.", field=field)
    for index, entry in enumerate(entries):
        if entry.weight < 0:
            raise InvalidTraffic(
                f"Traffic weights must not be negative. Got {entry.weight} for {entry.version}.",
                field=f"{field}[{index}].weight",
            )
    seen: dict[int, int] = {}
    pairs: list[tuple[int, int]] = []
    for index, entry in enumerate(entries):
        where = f"{field}[{index}].version"
        number = parse_version_ref(entry.version, versions, field=where)
        if number in seen:
            raise InvalidTraffic(
                f"Version {format_version(number)} appears more than once in traffic.",
                field=where,
            )
        seen[number] = index
        pairs.append((number, entry.weight))
    total = sum(weight for _, weight in pairs)
    if total != 100:
        raise WeightMismatch(f"Traffic weights must sum to 100. Got {total}.", field=field)
    return TrafficSplit(tuple(pairs))


def first_error(exc: ValidationError, prefix: str) -> tuple[str, str]:
    """A one-line message and the JSON path of the first pydantic error."""
    error = exc.errors(include_url=False)[0]
    path = prefix + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    )
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}", path
