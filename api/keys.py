"""HAWK client keys: how long a key must be, and new strong ones."""

import secrets

# 32 characters of a random key carry well over 128 bits.
MIN_KEY_LENGTH = 32


def new_key() -> str:
    """A random key of 43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


def key_problem(key: str) -> str | None:
    """What is wrong with ``key`` as a client's key, or None when it will do."""
    if not key:
        return "the key is empty"
    if key != key.strip():
        return "the key starts or ends with white space"
    if len(key) < MIN_KEY_LENGTH:
        return f"the key must be at least {MIN_KEY_LENGTH} characters long, not {len(key)}"
    return None
