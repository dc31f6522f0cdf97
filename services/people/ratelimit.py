"""Sign-in rate limits in SQLite, so every server process counts against the same numbers.

Flask-Limiter's storages are in-process memory (each gunicorn worker would count alone) or
servers (Redis, Memcached, MongoDB) this single-box app does not run; the database every worker
already shares holds the counters instead. Fixed windows: `limit` hits per `window` seconds.
Sign-ins count only their failures (`hit` after a failure, `wait` before an attempt), so a
household signing in often is never held up by its own successes (issue 16).
"""

from __future__ import annotations

import math
import time

from sqlite_utils import Database

from services import db as dbmod


def hit(db: Database, key: str, limit: int, window: int, now: float | None = None) -> int | None:
    """Count one hit on `key`; return None if allowed, else the seconds to wait (Retry-After)."""
    now = time.time() if now is None else now
    start = int(now // window * window)
    with dbmod.write(db):
        db.execute("DELETE FROM rate_hits WHERE window_start < ?", [start - window])
        db.execute(
            "INSERT INTO rate_hits (key, window_start, hits) VALUES (?, ?, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1",
            [key, start],
        )
        hits = db.execute(
            "SELECT hits FROM rate_hits WHERE key = ? AND window_start = ?", [key, start]
        ).fetchone()[0]
    if hits <= limit:
        return None
    return max(1, math.ceil(start + window - now))


def wait(db: Database, key: str, limit: int, window: int, now: float | None = None) -> int | None:
    """Return the seconds to wait if `key` already has `limit` hits in this window, else None.

    Counts nothing: the caller `hit`s the key when the attempt fails.
    """
    now = time.time() if now is None else now
    start = int(now // window * window)
    row = db.execute(
        "SELECT hits FROM rate_hits WHERE key = ? AND window_start = ?", [key, start]
    ).fetchone()
    if row is None or row[0] < limit:
        return None
    return max(1, math.ceil(start + window - now))
