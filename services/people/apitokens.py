"""API tokens for cookie-less clients, and signed, expiring media URLs bound to a user and a hash.

A token is shown once when made; only its sha256 is kept. A signed URL carries the user, the
expiry and an HMAC over (user, media_hash, expiry) with the server's secret, so a VR player or a
download manager can fetch one media item for a while without a session.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.people.sessions import token_hash

PREFIX = "lvs_"
SIGNED_TTL = 6 * 3600  # a signed media URL works this long (a long film, paused)
TOUCH_EVERY = 60.0  # a token's last_used is written at most once a minute


@dataclass(frozen=True)
class ApiToken:
    """A named token of one user (never the token itself)."""

    id: int
    user_id: int
    name: str
    created_at: float
    last_used: float | None


def create(db: Database, user_id: int, name: str) -> str:
    """Make a token named `name` for the user and return it; it is not shown again."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("name the token (1 to 64 characters), e.g. the device it is for")
    token = PREFIX + secrets.token_urlsafe(32)
    with dbmod.write(db):
        db.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
            [user_id, name, token_hash(token), time.time()],
        )
    return token


def list_for(db: Database, user_id: int) -> list[ApiToken]:
    """Return the user's tokens, newest first."""
    rows = db.execute(
        "SELECT id, user_id, name, created_at, last_used FROM api_tokens WHERE user_id = ? "
        "ORDER BY created_at DESC",
        [user_id],
    ).fetchall()
    return [ApiToken(*r) for r in rows]


def revoke(db: Database, user_id: int, token_id: int) -> None:
    """Delete one of the user's tokens."""
    with dbmod.write(db):
        cur = db.execute("DELETE FROM api_tokens WHERE id = ? AND user_id = ?", [token_id, user_id])
    if cur.rowcount != 1:
        raise NotFound("no such token")


def authenticate(db: Database, token: str) -> int | None:
    """Return the id of the enabled user a bearer token belongs to, or None."""
    found = authenticate_until(db, token)
    return found[0] if found else None


def authenticate_until(db: Database, token: str) -> tuple[int, float] | None:
    """Return the id of the enabled user a bearer token belongs to, and until when asking again
    would change nothing (its last_used is written again after that), or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    th = token_hash(token)
    row = db.execute(
        "SELECT t.user_id, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = ? AND u.disabled = 0",
        [th],
    ).fetchone()
    if row is None:
        return None
    now = time.time()
    if row[1] is None or now - row[1] > TOUCH_EVERY:
        with dbmod.write(db):
            db.execute("UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", [now, th])
        return row[0], -math.inf  # written just now: the next request reads it again
    return row[0], row[1] + TOUCH_EVERY


def _mac(secret: bytes, user_id: int, media_hash: str, expires: int) -> str:
    msg = f"{user_id}:{media_hash}:{expires}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:32]


def sign_media(
    secret: bytes, user_id: int, media_hash: str, *, ttl: int = SIGNED_TTL, now: float | None = None
) -> dict[str, str]:
    """Return the query parameters that let a cookie-less player fetch this media for `ttl` s."""
    expires = int((now or time.time()) + ttl)
    return {"u": str(user_id), "e": str(expires), "s": _mac(secret, user_id, media_hash, expires)}


def check_media_signature(
    secret: bytes, media_hash: str, params: dict[str, str], now: float | None = None
) -> int | None:
    """Return the user id a signed media URL was made for, or None if it is forged or expired."""
    try:
        user_id, expires = int(params.get("u", "")), int(params.get("e", ""))
    except ValueError:
        return None
    if expires < (now or time.time()):
        return None
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500).
    offered = params.get("s", "").encode("utf-8", "replace")
    return (
        user_id
        if hmac.compare_digest(_mac(secret, user_id, media_hash, expires).encode(), offered)
        else None
    )
