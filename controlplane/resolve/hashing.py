"""Deterministic, salted bucketing of users: the same answer in every process, forever.

Python's ``hash()`` is randomised per process, so it would reshuffle users on every restart.
MurmurHash3 x86_32 (the ``mmh3`` C extension) is fast, well distributed and specified, so any
other client can reproduce an assignment: ``mmh3_32(f"{salt}:{key}", seed=0) % 10000``.

Salts keep draws independent: the variant draw of a prompt is salted with the prompt's id
(users are not correlated across prompts), and a rule's coverage draw with a salt of its own
(being in a rule's sample says nothing about which version a user gets; see GrowthBook).
The salt never includes the deployment id, or every redeploy would reshuffle everyone and
a canary ramp could not be monotone.
"""

from __future__ import annotations

import uuid

import mmh3

BUCKETS = 10_000
"""Bucket space: 100 buckets per percentage point of weight."""

BUCKETS_PER_PERCENT = BUCKETS // 100


def bucket(salt: str, key: str) -> int:
    """The bucket in ``[0, BUCKETS)`` of ``key`` (a user id) under ``salt``.

    The modulo bias of 2**32 % 10000 is below 3e-6 relative, far under any sampling noise.
    """
    return mmh3.hash(f"{salt}:{key}", 0, False) % BUCKETS  # seed 0, unsigned; by position


def variant_salt(prompt_id: uuid.UUID) -> str:
    """Salt of the version draw: one per prompt, stable across deployments."""
    return prompt_id.hex


def coverage_salt(prompt_id: uuid.UUID, rule_name: str) -> str:
    """Salt of a rule's inclusion draw, distinct from the variant draw and from other rules."""
    return f"{prompt_id.hex}:coverage:{rule_name}"
