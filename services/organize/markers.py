"""Markers (cue points) on a video: a time and a label, per user."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput, NotFound

MAX_LABEL = 100


@dataclass(frozen=True)
class Marker:
    """A cue point."""

    id: int
    seconds: float
    label: str


def parse_seconds(value: str | float | None) -> float:
    """Return a time in seconds from a form value; raise InvalidInput."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput("seconds: not a number") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds > 1e7:
        raise InvalidInput("seconds: out of range")
    return round(seconds, 3)


def list_for(db: Database, user_id: int, mid: int) -> list[Marker]:
    """Return the user's markers on the media, by time."""
    rows = db.execute(
        "SELECT id, seconds, label FROM markers WHERE media_id = ? AND user_id = ? "
        "ORDER BY seconds, id",
        [mid, user_id],
    ).fetchall()
    return [Marker(*r) for r in rows]


def add(db: Database, user_id: int, mid: int, seconds: float, label: str) -> Marker:
    """Add a marker; an empty label becomes the time."""
    label = " ".join((label or "").split())[:MAX_LABEL]
    with dbmod.write(db):
        row = db.execute(
            "INSERT INTO markers (user_id, media_id, seconds, label, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            [user_id, mid, seconds, label, time.time()],
        ).fetchone()
    return Marker(row[0], seconds, label)


def delete(db: Database, user_id: int, marker_id: int) -> None:
    """Delete one of the user's markers; raise NotFound."""
    with dbmod.write(db):
        n = db.execute(
            "DELETE FROM markers WHERE id = ? AND user_id = ?", [marker_id, user_id]
        ).rowcount
    if not n:
        raise NotFound(f"no marker {marker_id}")
