"""A user's play history: what they played, most recent first, with play counts."""

from __future__ import annotations

from sqlite_utils import Database

from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card


def recent(db: Database, *, user_id: int, limit: int = 100) -> list[tuple[Card, int, float]]:
    """Return (card, plays, last played) for the user's played media, newest first."""
    rows = db.execute(
        f"SELECT w.play_count, w.last_played, {CARD_COLUMNS} FROM watch_state w "
        "INDEXED BY watch_state_recent JOIN files f ON f.id = (SELECT min(x.id) FROM files x "
        "WHERE x.media_id = w.media_id AND x.present = 1) "
        f"{CARD_JOINS} WHERE w.user_id = :user AND w.last_played IS NOT NULL "
        "ORDER BY w.last_played DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    return [(card(r[2:]), r[0], r[1]) for r in rows]
