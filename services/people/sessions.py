"""Server-side sessions: random cookie tokens stored as sha256, sliding expiry, revocation.

The cookie carries only the token; the row says whose session it is, so ending a session (sign
out, sign out everywhere, a password change, a disabled account) takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from services import db as dbmod
from services.errors import StorageError

LIFETIME = 30 * 24 * 3600.0  # a session unused this long ends
TOUCH_EVERY = 60.0  # last_seen/expires are written at most once a minute per session


@dataclass(frozen=True)
class Session:
    """One signed-in browser."""

    token_hash: str
    user_id: int
    created_at: float
    last_seen: float
    expires_at: float
    user_agent: str
    ip: str
    method: str


def token_hash(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create(
    db: Database,
    user_id: int,
    *,
    user_agent: str = "",
    ip: str = "",
    method: str = "password",
    lifetime: float = LIFETIME,
) -> str:
    """Start a session and return its token (for the cookie; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    with dbmod.write(db):
        db.execute("DELETE FROM sessions WHERE expires_at < ?", [now])
        db.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at, "
            "user_agent, ip, method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [token_hash(token), user_id, now, now, now + lifetime, user_agent[:300], ip, method],
        )
    return token


def lookup(db: Database, token: str, *, lifetime: float = LIFETIME) -> Session | None:
    """Return the live session for a cookie token, sliding its expiry; None when it has ended."""
    if not token or len(token) > 200:
        return None
    th = token_hash(token)
    row = db.execute(
        "SELECT s.token_hash, s.user_id, s.created_at, s.last_seen, s.expires_at, s.user_agent, "
        "s.ip, s.method FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND u.disabled = 0",
        [th],
    ).fetchone()
    if row is None:
        return None
    session = Session(*row)
    now = time.time()
    if session.expires_at < now:
        end(db, th)
        return None
    if now - session.last_seen > TOUCH_EVERY:
        with dbmod.write(db):
            db.execute(
                "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?",
                [now, now + lifetime, th],
            )
    return session


def holds_until(session: Session) -> float:
    """Return until when `lookup` of this session, as read, would answer the same without
    writing: it ends at expires_at and its last_seen is written again TOUCH_EVERY after the last."""
    return min(session.expires_at, session.last_seen + TOUCH_EVERY)


def end(db: Database, th: str) -> None:
    """End one session by its token hash."""
    with dbmod.write(db):
        db.execute("DELETE FROM sessions WHERE token_hash = ?", [th])


def end_user_session(db: Database, user_id: int, th: str) -> bool:
    """End one of this user's sessions (from the sessions page); return whether there was one."""
    with dbmod.write(db):
        cur = db.execute("DELETE FROM sessions WHERE token_hash = ? AND user_id = ?", [th, user_id])
    return cur.rowcount == 1


def end_all(db: Database, user_id: int, *, keep: str | None = None) -> int:
    """End every session of a user, except `keep` (a token hash); return how many ended."""
    with dbmod.write(db):
        cur = db.execute(
            "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?", [user_id, keep or ""]
        )
    return cur.rowcount


def list_for(db: Database, user_id: int) -> list[Session]:
    """Return a user's live sessions, most recently used first."""
    rows = db.execute(
        "SELECT token_hash, user_id, created_at, last_seen, expires_at, user_agent, ip, method "
        "FROM sessions WHERE user_id = ? AND expires_at >= ? ORDER BY last_seen DESC",
        [user_id, time.time()],
    ).fetchall()
    return [Session(*r) for r in rows]


def secret_key(data_dir: Path) -> bytes:
    """Return the server's secret (CSRF tokens, signed media URLs), made once in the data dir.

    Every worker process reads the same file, so what one signs the others accept.
    """
    path = data_dir / "secret_key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise StorageError(f"{path} is damaged: delete it (everyone signs in again)") from None
    fresh = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(fresh, path)  # the first process to get here wins; the others read its key
    except FileExistsError:
        pass
    finally:
        fresh.unlink()
    return bytes.fromhex(path.read_text().strip())
