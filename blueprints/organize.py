"""What the watch page shows of the organize features: tags, rating, favourite, markers,
the playlist being played, and videos sharing tags (for `related`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlite_utils import Database

from blueprints import playlists as playlist_routes
from blueprints.common import settings
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card
from services.organize import favorites, markers, metacache, playlists, ratings, tags


def tag_related(db: Database, mid: int, user_id: int, *, limit: int = 12) -> list[Card]:
    """Return videos sharing the most tags with the media, most shared first."""
    ids = tags.related_by_tags(db, mid, limit=limit)
    if not ids:
        return []
    rows = db.execute(
        f"SELECT m0.id, {CARD_COLUMNS} FROM media m0 JOIN files f ON f.id = (SELECT min(x.id) "
        f"FROM files x WHERE x.media_id = m0.id AND x.present = 1) {CARD_JOINS} "
        "WHERE m0.id IN (SELECT value FROM json_each(:ids)) AND m.kind = 'video'",
        {"ids": "[" + ",".join(map(str, ids)) + "]", "user": user_id},
    ).fetchall()
    order = {m: i for i, m in enumerate(ids)}
    return [card(r[1:]) for r in sorted(rows, key=lambda r: order[r[0]])]


def watch_context(
    db: Database, user_id: int, media_id: int, media_hash: str, args: Mapping[str, str]
) -> dict[str, Any]:
    """Return the template values of the watch page's organize panels."""
    cache = metacache.cache_for(settings().db_path)
    return {
        "item_tags": tags.tags_of(db, cache, media_id),
        "rating": ratings.summary(db, cache, media_hash, user_id),
        "favorite": favorites.is_favorite(db, cache, media_id, user_id),
        "item_markers": markers.list_for(db, user_id, media_id),
        "queue": playlist_routes.queue(args, media_hash),
        "playlists": playlists.list_for(db, user_id),
        "media_hash": media_hash,
    }
