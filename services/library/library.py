"""Libraries: the configured roots, whether they are online, and totals over what they hold."""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from services import db as dbmod
from services import fsutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Library:
    """One library root as recorded in the database."""

    id: int
    root: str
    name: str
    state: str
    state_reason: str | None
    is_network: bool
    last_scan_at: float | None

    @property
    def root_bytes(self) -> bytes:
        return os.fsencode(self.root)


_COLUMNS = "id, root, name, state, state_reason, is_network, last_scan_at"


def _row(row: tuple) -> Library:
    return Library(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


def sync_libraries(db: Database, roots: tuple[Path, ...]) -> list[Library]:
    """Record every configured root as a library and return them in configuration order.

    Roots removed from the configuration keep their rows (and so their user data); they are simply
    no longer scanned.
    """
    mounts = fsutil.read_mounts()
    with dbmod.write(db):
        for root in roots:
            text = str(root)
            db.execute(
                "INSERT INTO libraries (root, name, is_network, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (root) DO UPDATE SET is_network = excluded.is_network",
                [text, root.name or text, int(fsutil.is_network_path(root, mounts)), time.time()],
            )
    by_root = {r[1]: _row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM libraries").fetchall()}
    return [by_root[str(root)] for root in roots]


def list_libraries(db: Database) -> list[Library]:
    """Return every library the database knows, configured or not."""
    return [_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM libraries ORDER BY id")]


def offline_reason(db: Database, library: Library) -> str | None:
    """Return why a library root cannot be scanned now, or None when it is online.

    A root that is missing, not a folder, unreadable, or empty while the database holds its files
    (an unmounted share looks exactly like that) is offline: its files must not be marked missing.
    """
    root = library.root_bytes
    try:
        st = fsutil.stat(root)
    except FileNotFoundError:
        return "the folder does not exist (unplugged drive or unmounted share?)"
    except OSError as exc:
        return f"cannot reach the folder: {exc.strerror}"
    if not os.path.isdir(root) or not st:
        return "not a folder"
    try:
        with os.scandir(root) as it:
            empty = next(it, None) is None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        return f"cannot read the folder: {exc.strerror}"
    if empty:
        held = db.execute(
            "SELECT 1 FROM files WHERE library_id = ? AND present = 1 LIMIT 1", [library.id]
        ).fetchone()
        if held:
            return "the folder is empty but the library holds files (unmounted share?)"
    return None


def set_state(db: Database, library: Library, reason: str | None) -> None:
    """Record a library as online (reason None) or offline with its reason."""
    state = "offline" if reason else "online"
    if reason:
        log.warning("library %s is offline: %s", library.root, reason)
    with dbmod.write(db):
        db.execute(
            "UPDATE libraries SET state = ?, state_reason = ?, last_scan_at = ? WHERE id = ?",
            [state, reason, time.time(), library.id],
        )


@dataclass(frozen=True)
class Stats:
    """Totals over the whole library for `flask stats` and the dashboard."""

    libraries: int
    offline: int
    files: int
    missing: int
    media: int
    videos: int
    pictures: int
    duplicates: int
    failed: int
    pending: int
    total_size: int
    total_duration: float
    codecs: list[tuple[str, int]]
    resolutions: list[tuple[str, int]]


def failure_reasons(db: Database, limit: int = 10) -> list[tuple[str, int]]:
    """Return why present files failed, most common reason first, with how many files."""
    rows = db.execute(
        "SELECT e.reason, count(*) FROM probe_errors e JOIN files f ON f.id = e.file_id "
        "WHERE f.present = 1 GROUP BY e.reason ORDER BY count(*) DESC, e.reason LIMIT ?",
        [limit],
    ).fetchall()
    return [(reason, n) for reason, n in rows]


def stats(db: Database) -> Stats:
    """Return totals: files, media by kind, size, duration, codec and resolution breakdowns."""
    one = db.execute
    libraries, offline = one(
        "SELECT count(*), coalesce(sum(state = 'offline'), 0) FROM libraries"
    ).fetchone()
    files, missing = one(
        "SELECT coalesce(sum(present), 0), coalesce(sum(present = 0), 0) FROM files"
    ).fetchone()
    present_media = "SELECT * FROM media WHERE id IN (SELECT media_id FROM files WHERE present = 1)"
    media, videos, pictures, size, duration, pending = one(
        "SELECT count(*), coalesce(sum(kind = 'video' AND probe_status != 'failed'), 0), "
        "coalesce(sum(kind = 'picture' AND probe_status != 'failed'), 0), "
        f"coalesce(sum(size), 0), coalesce(sum(duration), 0), "
        f"coalesce(sum(probe_status = 'pending'), 0) FROM ({present_media})"
    ).fetchone()
    duplicates = one(
        "SELECT count(*) FROM (SELECT media_id FROM files WHERE present = 1 AND media_id IS NOT NULL "
        "GROUP BY media_id HAVING count(*) > 1)"
    ).fetchone()[0]
    failed = one(
        "SELECT count(*) FROM probe_errors e JOIN files f ON f.id = e.file_id WHERE f.present = 1"
    ).fetchone()[0]
    codecs = one(
        f"SELECT video_codec, count(*) FROM ({present_media}) WHERE kind = 'video' "
        "AND video_codec IS NOT NULL GROUP BY video_codec ORDER BY count(*) DESC"
    ).fetchall()
    resolutions = one(
        f"SELECT CASE WHEN height >= 2000 THEN '2160p+' WHEN height >= 1000 THEN '1080p' "
        f"WHEN height >= 700 THEN '720p' WHEN height >= 460 THEN '480p' ELSE 'SD' END AS r, "
        f"count(*) FROM ({present_media}) WHERE kind = 'video' AND height IS NOT NULL "
        "GROUP BY r ORDER BY min(-height)"
    ).fetchall()
    return Stats(
        libraries,
        offline,
        files,
        missing,
        media,
        videos,
        pictures,
        duplicates,
        failed,
        pending,
        size,
        duration,
        [tuple(r) for r in codecs],
        [tuple(r) for r in resolutions],
    )
