"""Bucketing is MurmurHash3 x86_32 of ``salt:key``: stable across processes and releases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import mmh3
from hypothesis import given
from hypothesis import strategies as st

from controlplane.resolve.hashing import BUCKETS, bucket, coverage_salt, variant_salt

SALT = "0190b1a2c3d4e5f60718293a4b5c6d7e"


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """The reference algorithm (Appleby's MurmurHash3_x86_32), independent of mmh3."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    tail_start = len(data) - len(data) % 4
    for i in range(0, tail_start, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    tail = data[tail_start:]
    for shift, byte in reversed(list(enumerate(tail))):
        k ^= byte << (8 * shift)
    if tail:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def test_published_murmur3_vectors() -> None:
    """Known MurmurHash3 x86_32 outputs, so the algorithm can be reproduced anywhere."""
    fox = b"The quick brown fox jumps over the lazy dog"
    assert murmur3_x86_32(b"", 0) == 0
    assert murmur3_x86_32(b"", 1) == 0x514E28B7
    assert murmur3_x86_32(fox, 0) == 0x2E4FF723
    assert murmur3_x86_32(b"Hello, world!", 1234) == 0xFAF6CDB3
    assert mmh3.hash(fox, 0, signed=False) == 0x2E4FF723
    assert mmh3.hash(b"Hello, world!", 1234, signed=False) == 0xFAF6CDB3


def test_fixed_buckets_never_change() -> None:
    """Pinned assignments: a change here would reshuffle every user of every deployment."""
    assert bucket(SALT, "usr_8f3k2a") == 8533
    assert bucket(SALT, "user-1") == 4126
    assert bucket(SALT, "") == 4691
    assert bucket("salt", "ünïcödé") == 9427


@given(salt=st.text(max_size=40), key=st.text(max_size=80))
def test_bucket_is_reference_murmur3_of_salt_and_key(salt: str, key: str) -> None:
    expected = murmur3_x86_32(f"{salt}:{key}".encode()) % BUCKETS
    assert bucket(salt, key) == expected
    assert 0 <= bucket(salt, key) < BUCKETS


def test_same_bucket_in_another_process_with_another_hash_seed() -> None:
    """Unlike hash(), the answer does not depend on PYTHONHASHSEED or the process."""
    keys = [f"user-{i}" for i in range(50)]
    code = (
        "from controlplane.resolve.hashing import bucket;"
        f"print([bucket({SALT!r}, k) for k in {keys!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == str([bucket(SALT, k) for k in keys])


def test_salts_differ_by_purpose_and_prompt() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert variant_salt(first) == first.hex
    assert variant_salt(first) != variant_salt(second)
    assert coverage_salt(first, "eu") != variant_salt(first)
    assert coverage_salt(first, "eu") != coverage_salt(first, "us")
