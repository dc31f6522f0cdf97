"""Per-user favourites."""

from __future__ import annotations

import time

from sqlite_utils import Database

from services import db as dbmod
from services.organize.metacache import MetaCache, generation


def _load(db: Database, mid: int) -> frozenset[int]:
    rows = db.execute("SELECT user_id FROM favorites WHERE media_id = ?", [mid]).fetchall()
    return frozenset(r[0] for r in rows)


def is_favorite(db: Database, cache: MetaCache, mid: int, user_id: int) -> bool:
    """Return whether the user marked the media a favourite."""
    return user_id in cache.get(db, ("favorites", mid), lambda: _load(db, mid))


def set_favorite(db: Database, cache: MetaCache, mid: int, user_id: int, on: bool) -> bool:
    """Mark or unmark the media a favourite of the user; return the new state. Write-through."""
    with dbmod.write(db):
        before = generation(db)
        if on:
            db.execute(
                "INSERT OR IGNORE INTO favorites (user_id, media_id, added_at) VALUES (?, ?, ?)",
                [user_id, mid, time.time()],
            )
        else:
            db.execute("DELETE FROM favorites WHERE user_id = ? AND media_id = ?", [user_id, mid])
        users = _load(db, mid)
        after = generation(db)
    cache.put(before, after, {("favorites", mid): users})
    return on
