"""API key secrets: generated once, shown once, stored as a SHA-256 digest.

Keys carry 192 random bits, so a fast hash is safe (no password-style KDF needed) and
lets the edge look a key up by its digest in memory.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "pl_sk_"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: the secret (to show once) and what is stored."""

    secret: str
    prefix: str
    sha256: str


def digest(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> NewKey:
    """A new random key such as ``pl_sk_3q...``."""
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    return NewKey(secret=secret, prefix=secret[: len(KEY_PREFIX) + 6], sha256=digest(secret))
