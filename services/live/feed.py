"""The change feed: what changed since a page's last seq, from the live_changes log (m0015).

An open page polls with the seq it was rendered with. Nothing new costs one lookup of the largest
seq (the answer is then 204); otherwise the rows after it are read, at most LIMIT, and summed up
as the page needs them: which folders' listings changed, which media appeared, went (no present
file left) or got a thumbnail, and whose ratings or tags changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

LIMIT = 500  # rows per answer; a page further behind reloads its regions instead


@dataclass(frozen=True)
class Changes:
    """What changed after a page's seq, up to `seq`."""

    seq: int
    reset: bool  # too much (or the log was rebuilt): reload whatever the page shows
    folders: tuple[int, ...] = ()  # folders whose listings changed
    added: tuple[str, ...] = ()  # media hashes that appeared or changed name or place
    gone: tuple[str, ...] = ()  # media hashes with no present file any more
    thumbs: tuple[str, ...] = ()  # media hashes whose thumbnail was made
    meta: tuple[str, ...] = ()  # media hashes whose ratings, favourites or tags changed


def latest(db: Database) -> int:
    """Return the largest seq of the change log (0 when it is empty)."""
    return db.execute("SELECT coalesce(max(seq), 0) FROM live_changes").fetchone()[0]


def since(db: Database, seq: int, *, limit: int = LIMIT) -> Changes:
    """Return what changed after `seq`: see Changes."""
    top = latest(db)
    if seq == top:
        return Changes(seq=top, reset=False)
    first = db.execute("SELECT min(seq) FROM live_changes").fetchone()[0]
    if seq > top or first is None or seq < first - 1 or top - seq > limit:
        return Changes(seq=top, reset=True)
    rows = db.execute(
        """SELECT c.kind, m.media_hash, c.folder_id,
                  EXISTS (SELECT 1 FROM files f WHERE f.media_id = c.media_id AND f.present = 1)
           FROM live_changes c LEFT JOIN media m ON m.id = c.media_id
           WHERE c.seq > ? AND c.seq <= ? ORDER BY c.seq""",
        [seq, top],
    ).fetchall()
    folders: dict[int, None] = {}
    added: dict[str, None] = {}
    gone: dict[str, None] = {}
    thumbs: dict[str, None] = {}
    meta: dict[str, None] = {}
    for kind, media_hash, folder_id, present in rows:
        if kind == "file":
            if folder_id is not None:
                folders[folder_id] = None
            if media_hash is not None:
                (added if present else gone)[media_hash] = None
        elif media_hash is not None:
            (thumbs if kind == "thumb" else meta)[media_hash] = None
    return Changes(
        seq=top,
        reset=False,
        folders=tuple(folders),
        added=tuple(added),
        gone=tuple(gone),
        thumbs=tuple(thumbs),
        meta=tuple(meta),
    )
