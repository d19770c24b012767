"""Idempotency keys for events, made on the caller's thread in well under a microsecond.

A key is an RFC 9562 UUID of version 8 (the custom layout): 74 random bits drawn once
per process, then a 48-bit counter. ``uuid.uuid4()`` costs several microseconds (a
system call for the random bytes, then the UUID object and its text); this costs one
``next()`` and one format. The random part is drawn again in a child after ``fork()``,
so a child never repeats its parent's keys. The same counter numbers events for
``flush()``: an event with a lower number was queued before.
"""

from __future__ import annotations

import itertools
import os


def _random_prefix() -> str:
    """``xxxxxxxx-xxxx-8xxx-Vxxx-``: 74 random bits, the version nibble and the variant."""
    bits = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are used
    head = bits & (1 << 48) - 1
    middle = bits >> 48 & 0xFFF
    variant = 0x8 | bits >> 60 & 0x3
    tail = bits >> 62 & 0xFFF
    text = f"{head:012x}"
    return f"{text[:8]}-{text[8:]}-8{middle:03x}-{variant:x}{tail:03x}-"


class Keys:
    """The process's key prefix and event counter (one instance, ``KEYS``)."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.prefix = _random_prefix()

    def reseed(self) -> None:
        """A new random part: called in a child process right after ``fork()``."""
        self.prefix = _random_prefix()


KEYS = Keys()
os.register_at_fork(after_in_child=KEYS.reseed)
