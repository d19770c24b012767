from controlplane.keys import KEY_PREFIX, digest, generate_key


def test_generated_keys_are_unique_prefixed_and_stored_as_digest() -> None:
    first, second = generate_key(), generate_key()
    assert first.secret != second.secret
    assert first.secret.startswith(KEY_PREFIX)
    assert first.secret.startswith(first.prefix)
    assert first.sha256 == digest(first.secret)
    assert first.secret not in first.sha256
    assert len(first.secret) >= len(KEY_PREFIX) + 32
