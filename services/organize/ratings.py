"""Per-user 1–5 star ratings and each media's average: the watch page and the ratings API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput
from services.organize.metacache import MetaCache, generation
from services.organize.tags import media_id

REMOVE = "remove"  # the documented way to clear a rating besides null


@dataclass(frozen=True)
class Summary:
    """A media's ratings as the API returns them."""

    media_hash: str
    your_rating: int | None
    average: float | None
    count: int

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON body of the ratings API."""
        return {
            "media_hash": self.media_hash,
            "your_rating": self.your_rating,
            "average": self.average,
            "count": self.count,
        }


def parse_rating(body: Any) -> int | None:
    """Return the stars asked for by a POST body, None to remove; raise InvalidInput otherwise.

    Accepted: {"rating": 1..5} (an integer, not a bool, float or string), {"rating": null} or
    {"rating": "remove"}.
    """
    if not isinstance(body, dict) or "rating" not in body:
        raise InvalidInput('body must be a JSON object {"rating": 1-5, null or "remove"}')
    value = body["rating"]
    if value is None or value == REMOVE:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidInput('rating must be an integer 1-5, null or "remove"')
    return value


def _load(db: Database, mid: int) -> dict[int, int]:
    rows = db.execute("SELECT user_id, stars FROM ratings WHERE media_id = ?", [mid]).fetchall()
    return {u: s for u, s in rows}


def _summary(media_hash: str, by_user: dict[int, int], user_id: int) -> Summary:
    count = len(by_user)
    average = round(sum(by_user.values()) / count, 2) if count else None
    return Summary(media_hash, by_user.get(user_id), average, count)


def summary(db: Database, cache: MetaCache, media_hash: str, user_id: int) -> Summary:
    """Return the media's rating summary for this user; raise NotFound."""
    mid = media_id(db, media_hash)
    by_user = cache.get(db, ("ratings", mid), lambda: _load(db, mid))
    return _summary(media_hash, by_user, user_id)


def rate(
    db: Database, cache: MetaCache, media_hash: str, user_id: int, stars: int | None
) -> Summary:
    """Set (or with None, remove) the user's rating; return the new summary. Write-through."""
    if stars is not None and not 1 <= stars <= 5:
        raise InvalidInput("rating must be 1-5")
    with dbmod.write(db):
        mid = media_id(db, media_hash)
        before = generation(db)
        if stars is None:
            db.execute("DELETE FROM ratings WHERE user_id = ? AND media_id = ?", [user_id, mid])
        else:
            db.execute(
                "INSERT INTO ratings (user_id, media_id, stars, rated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, media_id) DO UPDATE SET stars = excluded.stars, "
                "rated_at = excluded.rated_at",
                [user_id, mid, stars, time.time()],
            )
        by_user = _load(db, mid)
        after = generation(db)
    cache.put(before, after, {("ratings", mid): by_user})
    return _summary(media_hash, by_user, user_id)
