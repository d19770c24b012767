"""Spellings shared by every family: timestamps, version labels and who did a write."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.catalog import Principal
from controlplane.resolve.traffic import format_version
from controlplane.times import iso

__all__ = ["actor", "iso", "now_iso", "version_label"]


def now_iso() -> str:
    """The current time, spelled like every other timestamp."""
    return iso(datetime.now(UTC))


def version_label(number: int) -> str:
    """Seed 001's spelling of a version number: ``v5``."""
    return format_version(number)


def actor(principal: Principal) -> str:
    """Who made a write, for ``created_by`` and ``deployed_by``: ``key_<hex of the key id>``.

    The API has no user accounts, only keys: the key's id names the actor without revealing
    any of its secret (``promptline admin create-key`` prints the id).
    """
    return f"key_{principal.key_id.hex}"
