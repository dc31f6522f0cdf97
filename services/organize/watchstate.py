"""Watch state per user: resume positions, watched, play counts, and "continue watching".

Jellyfin's defaults decide what a position means: under 5 % in is not kept (you only looked),
over 90 % counts as watched (the credits do not matter) and clears the position, and a video
shorter than 5 minutes never resumes. A play is counted once per viewing: the player names each
viewing with a random id and only a new id adds to the count, however often it reports progress.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card
from services.errors import InvalidInput, NotFound

DEFAULT_USER = 1  # until accounts exist, everyone is the default user (migration m0002)
MIN_RESUME_PCT = 5.0
MAX_RESUME_PCT = 90.0
MIN_RESUME_DURATION = 300.0
_VIEWING_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class WatchState:
    """What one user has watched of one media item."""

    position: float
    duration: float | None
    watched: bool
    play_count: int
    last_played: float | None


NEVER = WatchState(0.0, None, False, 0, None)


def apply_rules(position: float, duration: float) -> tuple[float, bool]:
    """Return (position to keep, watched) for a reported position, by the resume rules."""
    pct = 100.0 * position / duration if duration > 0 else 0.0
    if pct > MAX_RESUME_PCT:
        return 0.0, True
    if duration < MIN_RESUME_DURATION or pct < MIN_RESUME_PCT:
        return 0.0, False
    return position, False


def get(db: Database, user_id: int, media_id: int) -> WatchState:
    """Return the user's watch state of a media item (NEVER when it was never played)."""
    row = db.execute(
        "SELECT position, duration, watched, play_count, last_played FROM watch_state "
        "WHERE user_id = ? AND media_id = ?",
        [user_id, media_id],
    ).fetchone()
    if row is None:
        return NEVER
    return WatchState(row[0], row[1], bool(row[2]), row[3], row[4])


def _number(name: str, value: str | float | None) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{name}: not a number") from None
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{name}: must be a finite number ≥ 0")
    return number


def record(
    db: Database,
    user_id: int,
    media_hash: str,
    *,
    position: str | float | None,
    duration: str | float | None,
    viewing: str | None,
    now: float | None = None,
) -> WatchState:
    """Record a player's progress report and return the state kept.

    The probed duration wins over the player's when known: the rules must not bend to a client.
    """
    pos = _number("position", position)
    reported = _number("duration", duration) if duration not in (None, "") else 0.0
    if not viewing or not _VIEWING_RE.fullmatch(viewing):
        raise InvalidInput("viewing: expected the player's viewing id")
    row = db.execute(
        "SELECT id, kind, duration FROM media WHERE media_hash = ?", [media_hash]
    ).fetchone()
    if row is None:
        raise NotFound("no such media")
    media_id, kind, probed = row
    if kind != "video":
        raise InvalidInput("only videos have a watch state")
    length = probed or reported
    if not length:
        raise InvalidInput("duration: unknown for this video; the player must report it")
    kept, watched = apply_rules(min(pos, length), length)
    now = time.time() if now is None else now
    with dbmod.write(db):
        db.execute(
            """INSERT INTO watch_state
                   (user_id, media_id, position, duration, watched, play_count, last_played, viewing)
               VALUES (:user, :media, :pos, :len, :watched, 1, :now, :viewing)
               ON CONFLICT (user_id, media_id) DO UPDATE SET
                   position = :pos, duration = :len, last_played = :now,
                   watched = watched OR :watched,
                   play_count = play_count + (viewing IS NOT :viewing),
                   viewing = :viewing""",
            {
                "user": user_id,
                "media": media_id,
                "pos": kept,
                "len": length,
                "watched": int(watched),
                "now": now,
                "viewing": viewing,
            },
        )
    return get(db, user_id, media_id)


def continue_watching(db: Database, *, user_id: int, limit: int = 12) -> list[Card]:
    """Return videos with a resume position, most recently played first."""
    rows = db.execute(
        f"SELECT {CARD_COLUMNS} FROM watch_state w INDEXED BY watch_state_recent "
        "JOIN files f ON f.id = (SELECT min(x.id) FROM files x "
        "  WHERE x.media_id = w.media_id AND x.present = 1) "
        f"{CARD_JOINS} WHERE w.user_id = :user AND w.position > 0 "
        "ORDER BY w.last_played DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    return [card(r) for r in rows]
