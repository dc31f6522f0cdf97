"""Duplicates: the same content (media_hash) present in several places."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlite_utils import Database

from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card


@dataclass(frozen=True)
class Duplicate:
    """One content and every present file holding it."""

    card: Card
    paths: tuple[str, ...]
    size: int  # bytes a cleanup could free: every copy but one


def find(db: Database, *, user_id: int, limit: int = 200) -> list[Duplicate]:
    """Return media with more than one present file, largest waste first.

    One pass over the files_media index (~0.1 s per million files): an occasional page.
    """
    groups = db.execute(
        "SELECT media_id, count(*) AS n, min(id) FROM files "
        "WHERE present = 1 AND media_id IS NOT NULL GROUP BY media_id HAVING n > 1 "
        "ORDER BY (n - 1) * max(size) DESC LIMIT ?",
        [limit],
    ).fetchall()
    out = []
    for media_id, _n, first in groups:
        row = db.execute(
            f"SELECT {CARD_COLUMNS} FROM files f {CARD_JOINS} WHERE f.id = :id",
            {"id": first, "user": user_id},
        ).fetchone()
        paths = db.execute(
            "SELECT l.root, f.path FROM files f JOIN libraries l ON l.id = f.library_id "
            "WHERE f.media_id = ? AND f.present = 1 ORDER BY f.id",
            [media_id],
        ).fetchall()
        c = card(row)
        out.append(
            Duplicate(
                c,
                tuple(os.path.join(r, bytes(p).decode("utf-8", "replace")) for r, p in paths),
                c.size * (len(paths) - 1),
            )
        )
    return out
