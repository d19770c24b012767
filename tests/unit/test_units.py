"""Unit ids: a keyed BLAKE2b of the user id under each project's own key."""

from __future__ import annotations

from hashlib import blake2b

from promptline.units import unit_id


def _reference(key: bytes, user_id: str) -> str:
    return blake2b(user_id.encode(), digest_size=16, key=key).hexdigest()


def test_each_project_key_gives_its_own_hash_whatever_the_order_of_calls() -> None:
    keys = [b"a" * 32, b"b" * 32, b""]
    for round_ in range(3):
        for key in keys:
            for user in ("usr_1", "usr_2", "ü-ser", ""):
                assert unit_id(key, f"{user}{round_}") == _reference(key, f"{user}{round_}")
    assert unit_id(keys[0], "usr_1") != unit_id(keys[1], "usr_1")


def test_as_given_is_the_user_id_itself() -> None:
    assert unit_id(b"k" * 32, "usr_8f3k2a", hashed=False) == "usr_8f3k2a"
