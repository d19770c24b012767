"""Unit ids of exposures: who was exposed, without storing who they are.

By default a unit id is a keyed BLAKE2b hash of the caller's ``user_id`` under a secret key
of the project: the same user is the same unit in every exposure (so distinct units can be
counted exactly), while nobody holding only the warehouse can tell which user a unit is or
test a guess, since that needs the key. ``as_given`` stores the ``user_id`` itself, for
installations that join exposures to their own user tables (docs/rollouts.md, "Exposures").
"""

from __future__ import annotations

from hashlib import blake2b

UNIT_DIGEST_BYTES = 16
"""128 bits: no two units collide among any number of users a project will ever have."""


def unit_id(key: bytes, user_id: str, hashed: bool = True) -> str:
    """The unit id of ``user_id`` under the project's ``key`` (32 hex digits), or the id itself."""
    if not hashed:
        return user_id
    return blake2b(user_id.encode(), digest_size=UNIT_DIGEST_BYTES, key=key).hexdigest()
