"""Requests between the server and its workers, signed with the shared secret.

Each request carries `X-LVS-Expires` (Unix seconds) and `X-LVS-Signature`:
HMAC-SHA256(secret, "METHOD\\nPATH\\nEXPIRES") in hex. A worker answers only a request whose
signature is right and whose expiry is neither past nor further ahead than VALID, each give or
take SKEW seconds (the two machines' clocks differ a little, either way), so its segments are
not open to the LAN and a captured request is useless after VALID + SKEW seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

VALID = 30  # seconds a signature lives
SKEW = 30  # seconds the worker's clock may be off the server's, ahead or behind
EXPIRES = "X-LVS-Expires"
SIGNATURE = "X-LVS-Signature"
HEX = re.compile(r"[0-9a-f]+")


def sign(secret: str, method: str, path: str, expires: int) -> str:
    msg = f"{method.upper()}\n{path}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def headers(secret: str, method: str, path: str, valid: int = VALID) -> dict[str, str]:
    """Return the headers that sign a request for `path` (no query) with `method`."""
    expires = int(time.time()) + valid
    return {EXPIRES: str(expires), SIGNATURE: sign(secret, method, path, expires)}


def verify(secret: str, method: str, path: str, expires: str | None, signature: str | None,
           now: float | None = None) -> str | None:  # fmt: skip
    """Return None when the request is signed right and in time, else why not (for the log)."""
    if not secret:
        return "no node secret configured"
    if not expires or not signature:
        return "unsigned"
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return "malformed expiry"
    signature = signature.strip().lower()
    if len(signature) != 64 or not HEX.fullmatch(signature):
        return "malformed signature"
    when = int(expires)
    now = time.time() if now is None else now
    if when < now - SKEW:
        return f"expired {int(now - when)} s ago"
    if when > now + VALID + SKEW:
        return "expiry too far ahead"
    if not hmac.compare_digest(sign(secret, method, path, when), signature):
        return "wrong signature"
    return None
