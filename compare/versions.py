"""Which version is which: content hashes to numbers, a fallback baseline, a baseline reference.

All from the in-memory catalog. The default baseline is the stable version of the deployment
history (``compare/stable.py``); what is here serves when the history has none.
"""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.api.references import parse_version_ref
from controlplane.catalog import PromptEntry


def number_of_hash(entry: PromptEntry) -> dict[str, int]:
    """Content hash to version number; the newest version when several share a content."""
    numbers: dict[str, int] = {}
    for number, version in entry.versions_by_number.items():
        numbers[version.content_hash] = max(number, numbers.get(version.content_hash, 0))
    return numbers


def deployed_shares(entry: PromptEntry) -> dict[int, int]:
    """Buckets (of 10,000) each version takes in the deployment in force; empty if none."""
    routing = entry.routing
    if routing is None:
        return {}
    shares: dict[int, int] = {}
    start = 0
    for end, number in zip(routing.ranges.upper, routing.ranges.numbers, strict=True):
        shares[number] = shares.get(number, 0) + end - start
        start = end
    return shares


def fallback_baseline(entry: PromptEntry, events: Mapping[int, int]) -> int | None:
    """The baseline when no deployment ever sent all traffic to one version: the version
    with the most traffic in the deployment in force (the newer on a tie; a never-deployed
    prompt serves its latest version), else the version with the most events, else the
    latest version."""
    shares = deployed_shares(entry)
    if shares:
        return max(shares, key=lambda number: (shares[number], number))
    busy = {number: count for number, count in events.items() if count > 0}
    if busy:
        return max(busy, key=lambda number: (busy[number], number))
    return max(entry.versions_by_number, default=None)


def find_version(entry: PromptEntry, reference: str) -> int | None:
    """The number of the version ``reference`` names: 4, "v4", a content hash or a version id."""
    ref = parse_version_ref(reference)
    if ref is None:
        return None
    if ref.number is not None:
        return ref.number if ref.number in entry.versions_by_number else None
    if ref.content_hash is not None:
        return number_of_hash(entry).get(ref.content_hash)
    for number, version in entry.versions_by_number.items():
        if version.id == ref.version_id:
            return number
    return None
