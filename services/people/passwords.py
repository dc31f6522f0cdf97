"""Passwords: bcrypt hashes, the 72-byte limit, and checks that take the same time for everyone."""

from __future__ import annotations

import bcrypt

from services.errors import InvalidInput

ROUNDS = 12
MAX_BYTES = 72  # bcrypt reads no further, and bcrypt 5 raises on longer input
MIN_CHARS = 8


class PasswordRejected(InvalidInput):
    """A new or offered password cannot be used (too short, over bcrypt's 72 bytes)."""


def check_length(password: str) -> bytes:
    """Return the password as UTF-8, or raise PasswordRejected when bcrypt cannot take it."""
    raw = password.encode("utf-8")
    if len(raw) > MAX_BYTES:
        raise PasswordRejected(
            f"passwords can be at most {MAX_BYTES} bytes (this one is {len(raw)} bytes in UTF-8)"
        )
    return raw


def hash_password(password: str, rounds: int = ROUNDS) -> str:
    """Return the bcrypt hash of a new password, which must be 8 characters to 72 bytes."""
    raw = check_length(password)
    if len(password) < MIN_CHARS:
        raise PasswordRejected(f"passwords need at least {MIN_CHARS} characters")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds)).decode("ascii")


_DUMMY = bcrypt.hashpw(b"no such user", bcrypt.gensalt(ROUNDS))


def verify(password: str, hashed: str | None) -> bool:
    """Return whether `password` matches `hashed`.

    With no hash (unknown user, passkey-only account) a dummy hash is checked all the same,
    so the answer takes as long as a real wrong password.
    """
    raw = check_length(password)
    if not hashed:
        bcrypt.checkpw(raw, _DUMMY)
        return False
    try:
        return bcrypt.checkpw(raw, hashed.encode("ascii"))
    except ValueError:
        return False
