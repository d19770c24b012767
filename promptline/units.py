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


HASHERS_KEPT = 4_096
"""Projects whose keyed hasher is kept before the cache starts over."""
_hashers: dict[bytes, blake2b] = {}


def unit_id(key: bytes, user_id: str, hashed: bool = True) -> str:
    """The unit id of ``user_id`` under the project's ``key`` (32 hex digits), or the id itself.

    A keyed BLAKE2b hashes its key as a first block; a copy of a hasher that has already
    done so halves the cost of each exposure's hash (resolve's exposures pay it per answer).
    """
    if not hashed:
        return user_id
    keyed = _hashers.get(key)
    if keyed is None:
        if len(_hashers) >= HASHERS_KEPT:
            _hashers.clear()
        keyed = _hashers[key] = blake2b(digest_size=UNIT_DIGEST_BYTES, key=key)
    hasher = keyed.copy()
    hasher.update(user_id.encode())
    return hasher.hexdigest()
