"""Per-user ordered playlists: create, add (one or a selection), reorder, remove, play order."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card
from services.errors import InvalidInput, NotFound

MAX_NAME = 100


@dataclass(frozen=True)
class Playlist:
    """A playlist and its length."""

    id: int
    name: str
    count: int


@dataclass(frozen=True)
class Entry:
    """One item of a playlist, in order."""

    item_id: int
    card: Card


def _name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise InvalidInput("name: empty")
    if len(clean) > MAX_NAME:
        raise InvalidInput(f"name: longer than {MAX_NAME} characters")
    return clean


def create(db: Database, user_id: int, name: str) -> Playlist:
    """Create an empty playlist."""
    with dbmod.write(db):
        pid = db.execute(
            "INSERT INTO playlists (user_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            [user_id, _name(name), time.time()],
        ).fetchone()[0]
    return get(db, user_id, pid)


def list_for(db: Database, user_id: int) -> list[Playlist]:
    """Return the user's playlists by name."""
    rows = db.execute(
        "SELECT p.id, p.name, (SELECT count(*) FROM playlist_items i WHERE i.playlist_id = p.id) "
        "FROM playlists p WHERE p.user_id = ? ORDER BY p.name COLLATE NOCASE, p.id",
        [user_id],
    ).fetchall()
    return [Playlist(*r) for r in rows]


def covers(db: Database, user_id: int, per: int = 4) -> dict[int, list[str]]:
    """Return the media_hashes of the first `per` items of each of the user's playlists."""
    rows = db.execute(
        "SELECT playlist_id, media_hash FROM (SELECT i.playlist_id, m.media_hash, row_number() "
        "OVER (PARTITION BY i.playlist_id ORDER BY i.position, i.id) AS n FROM playlists p "
        "JOIN playlist_items i ON i.playlist_id = p.id JOIN media m ON m.id = i.media_id "
        "WHERE p.user_id = ?) WHERE n <= ?",
        [user_id, per],
    ).fetchall()
    out: dict[int, list[str]] = {}
    for pid, media_hash in rows:
        out.setdefault(pid, []).append(media_hash)
    return out


def get(db: Database, user_id: int, playlist_id: int) -> Playlist:
    """Return the user's playlist; raise NotFound (also for another user's)."""
    row = db.execute(
        "SELECT p.id, p.name, (SELECT count(*) FROM playlist_items i WHERE i.playlist_id = p.id) "
        "FROM playlists p WHERE p.id = ? AND p.user_id = ?",
        [playlist_id, user_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"no playlist {playlist_id}")
    return Playlist(*row)


def entries(db: Database, user_id: int, playlist_id: int) -> list[Entry]:
    """Return the playlist's items in order (one present file each)."""
    get(db, user_id, playlist_id)
    rows = db.execute(
        f"SELECT i.id, {CARD_COLUMNS} FROM playlist_items i "
        "JOIN files f ON f.id = (SELECT min(x.id) FROM files x WHERE x.media_id = i.media_id "
        "AND x.present = 1) "
        f"{CARD_JOINS} WHERE i.playlist_id = :pl ORDER BY i.position, i.id",
        {"pl": playlist_id, "user": user_id},
    ).fetchall()
    return [Entry(r[0], card(r[1:])) for r in rows]


def add(db: Database, user_id: int, playlist_id: int, mids: Sequence[int]) -> int:
    """Append media to the end of the playlist; return how many were added."""
    with dbmod.write(db):
        get(db, user_id, playlist_id)
        end = db.execute(
            "SELECT coalesce(max(position), 0) FROM playlist_items WHERE playlist_id = ?",
            [playlist_id],
        ).fetchone()[0]
        for n, mid in enumerate(mids, 1):
            db.execute(
                "INSERT INTO playlist_items (playlist_id, media_id, position) VALUES (?, ?, ?)",
                [playlist_id, mid, end + n],
            )
    return len(mids)


def remove(db: Database, user_id: int, playlist_id: int, item_id: int) -> None:
    """Remove one item."""
    with dbmod.write(db):
        get(db, user_id, playlist_id)
        db.execute(
            "DELETE FROM playlist_items WHERE id = ? AND playlist_id = ?", [item_id, playlist_id]
        )


def move(db: Database, user_id: int, playlist_id: int, item_id: int, delta: int) -> None:
    """Move one item up (delta < 0) or down by swapping it with its neighbour."""
    with dbmod.write(db):
        shown = [e.item_id for e in entries(db, user_id, playlist_id)]
        if item_id not in shown:
            raise NotFound(f"no item {item_id} in this playlist")
        i = shown.index(item_id)
        neighbour = shown[max(0, min(len(shown) - 1, i + (1 if delta > 0 else -1)))]
        # Renumber every item, hidden ones too (their file is missing now, they may come back),
        # swapping only the two the user sees side by side.
        ids = [
            r[0]
            for r in db.execute(
                "SELECT id FROM playlist_items WHERE playlist_id = ? ORDER BY position, id",
                [playlist_id],
            )
        ]
        a, b = ids.index(item_id), ids.index(neighbour)
        ids[a], ids[b] = ids[b], ids[a]
        db.execute(
            "UPDATE playlist_items SET position = (SELECT key + 1 FROM json_each(:ids) "
            "WHERE value = playlist_items.id) WHERE playlist_id = :pl",
            {"ids": "[" + ",".join(map(str, ids)) + "]", "pl": playlist_id},
        )


def delete(db: Database, user_id: int, playlist_id: int) -> None:
    """Delete the playlist."""
    with dbmod.write(db):
        get(db, user_id, playlist_id)
        db.execute("DELETE FROM playlists WHERE id = ?", [playlist_id])


def play_order(
    db: Database, user_id: int, playlist_id: int, *, shuffle: bool = False, seed: int = 0
) -> list[str]:
    """Return the media hashes to play, in order or shuffled (reproducibly, from `seed`)."""
    hashes = [e.card.media_hash for e in entries(db, user_id, playlist_id)]
    if shuffle:
        random.Random(seed).shuffle(hashes)
    return hashes
