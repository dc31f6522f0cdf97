"""Keeping the data dir healthy: backup, restore, integrity check, vacuum, cache prune, purge.

- backup: SQLite's online backup API copies the database page by page in one step (one read
  transaction), so the copy is consistent while the server keeps writing; it is checked
  (integrity_check) before it is renamed into place.
- restore: only onto a stopped server (no process holds the server or background lock); the file must be
  an SQLite database that passes integrity_check and whose schema this version knows. The
  current database is kept beside it first; the restored one is then migrated up.
- cache prune: thumbnails, sprites and preview clips whose media_hash no media has any more.
- purge missing: forget files that are gone from an online library, and media left without any
  file (their watch state, ratings, tags go with them). Offline libraries are never touched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput, StorageError
from services.playback import transcoder
from services.previews.thumbnails import HASH_RE

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
# services.background's locks: every server process holds the first, its owner the second.
SERVER_LOCKS = ("server.lock", "background.lock")
CACHE_DIRS = {"thumbs": (".jpg",), "sprites": (".jpg", ".vtt"), "clips": (".mp4",)}

Progress = Callable[[int, int], None]  # done, total


@dataclass(frozen=True)
class PruneReport:
    """Files removed from the caches and the bytes they held."""

    files: int
    bytes: int


@dataclass(frozen=True)
class PurgeCount:
    """What purging missing items removes (or removed)."""

    files: int
    media: int


def integrity_check(path: Path) -> list[str]:
    """Return the problems `PRAGMA integrity_check` finds (empty when the file is sound)."""
    conn = _open_ro(path)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    problems = [r for r in rows if r != "ok"]
    problems += [f"foreign key: {t} row {rowid} -> {parent}" for t, rowid, parent, _ in fk[:20]]
    return problems


def _open_ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(16) != SQLITE_MAGIC:
            raise InvalidInput(f"{path}: not an SQLite database")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def backup(db_path: Path, dest: Path, *, overwrite: bool = False) -> int:
    """Copy the live database to `dest` consistently; check it; return its size in bytes."""
    dest = dest.resolve()
    if dest.exists() and not overwrite:
        raise InvalidInput(f"{dest} exists (pass --yes to replace it)")
    if dest == db_path.resolve():
        raise InvalidInput("the backup cannot replace the database itself")
    if not dest.parent.is_dir():
        raise InvalidInput(f"{dest.parent}: no such folder")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    src = sqlite3.connect(str(db_path), timeout=dbmod.BUSY_TIMEOUT_MS / 1000)
    try:
        out = sqlite3.connect(str(tmp))
        try:
            # pages=-1: one step, one read transaction; a stepped copy would restart on each write.
            src.backup(out, pages=-1)
            out.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        finally:
            out.close()
        problems = integrity_check(tmp)
        if problems:
            raise StorageError(f"the backup failed its check: {problems[0]}")
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        raise StorageError(f"backup failed: {exc}") from None
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
    return dest.stat().st_size


def server_running(data_dir: Path) -> bool:
    """Return True when a server process holds one of the data dir's server locks."""
    for name in SERVER_LOCKS:
        path = data_dir / name
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may have taken
    return False


def check_restorable(path: Path) -> None:
    """Raise InvalidInput unless `path` is a sound database of a schema this version knows."""
    problems = integrity_check(path)
    if problems:
        raise InvalidInput(f"{path}: failed its integrity check: {problems[0]}")
    conn = _open_ro(path)
    try:
        applied = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                [dbmod.migrations.name],
            )
        }
    except sqlite3.DatabaseError:
        raise InvalidInput(f"{path}: not a Local Video Server database") from None
    finally:
        conn.close()
    known = {m.name for m in dbmod.migrations._migrations}
    newer = sorted(applied - known)
    if newer:
        raise InvalidInput(
            f"{path}: made by a newer version (schema {newer[-1]}); upgrade this server first"
        )
    if not applied:
        raise InvalidInput(f"{path}: not a Local Video Server database")


def restore(data_dir: Path, source: Path) -> Path:
    """Replace the database with `source` (checked first); return where the old one was kept."""
    source = source.resolve()
    check_restorable(source)
    if server_running(data_dir):
        raise StorageError("the server is running: stop it before restoring")
    db_path = data_dir / "library.db"
    kept = data_dir / f"library.db.before-restore-{time.strftime('%Y%m%d-%H%M%S')}"
    if db_path.exists():
        backup(db_path, kept, overwrite=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(str(db_path), timeout=dbmod.BUSY_TIMEOUT_MS / 1000)
    try:
        src.backup(dst)  # through SQLite: the -wal and -shm files stay consistent
    except sqlite3.Error as exc:
        raise StorageError(f"restore failed: {exc}") from None
    finally:
        src.close()
        dst.close()
    dbmod.open_db(data_dir).close()  # an older schema is brought up to date
    return kept


def vacuum(db: Database) -> tuple[int, int]:
    """Rebuild the database file compactly; return its size before and after (bytes)."""
    path = Path(db.conn.execute("PRAGMA database_list").fetchone()[2])
    before = path.stat().st_size
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return before, path.stat().st_size


def orphaned_caches(db: Database, data_dir: Path) -> list[Path]:
    """Return thumbnail, sprite, clip and transcode files whose media_hash no media row has (and
    what encoders of a stopped server left behind), and cached artwork no sidecar uses."""
    known = {r[0] for r in db.execute("SELECT media_hash FROM media")}
    found = transcoder.prunable(data_dir / "hls", known)
    for folder, suffixes in CACHE_DIRS.items():
        root = data_dir / folder
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.suffix not in suffixes or not path.is_file():
                continue
            if HASH_RE.fullmatch(path.stem) and path.stem not in known:
                found.append(path)
    subtitles = data_dir / "subtitles"  # services/playback/subtitles/extract.py: one folder a hash
    if subtitles.is_dir():
        for folder in subtitles.iterdir():
            if folder.is_dir() and HASH_RE.fullmatch(folder.name) and folder.name not in known:
                found += [p for p in folder.rglob("*") if p.is_file()]
    artwork = data_dir / "artwork"  # services/shows/artwork.py: pictures from beside the media
    if artwork.is_dir():
        keys = {r[0] for r in db.execute("SELECT key FROM artwork")}
        found += [p for p in artwork.glob("*/*.jpg") if p.stem not in keys]
    return found


def prune_caches(db: Database, data_dir: Path, progress: Progress | None = None) -> PruneReport:
    """Delete orphaned thumbnails, sprites and clips; return how many files and bytes went."""
    paths = orphaned_caches(db, data_dir)
    files = size = 0
    for i, path in enumerate(paths, 1):
        try:
            n = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue

        files += 1
        size += n
        if progress:
            progress(i, len(paths))
    transcoder.remove_empty_folders(data_dir / "hls")
    for folder in sorted((data_dir / "subtitles").glob("*/**"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return PruneReport(files, size)


_MISSING_FILES = """FROM files f JOIN libraries l ON l.id = f.library_id
    WHERE f.present = 0 AND l.state != 'offline'"""
_ORPHAN_MEDIA = "FROM media m WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.media_id = m.id)"


def count_missing(db: Database) -> PurgeCount:
    """Return how many missing files, and media left with no file, a purge would remove."""
    files = db.execute(f"SELECT count(*) {_MISSING_FILES}").fetchone()[0]
    media = db.execute(
        """SELECT count(*) FROM media m WHERE NOT EXISTS (
            SELECT 1 FROM files f JOIN libraries l ON l.id = f.library_id WHERE f.media_id = m.id
            AND (f.present = 1 OR l.state = 'offline'))"""
    ).fetchone()[0]
    return PurgeCount(files, media)


def purge_missing(db: Database) -> PurgeCount:
    """Forget missing files of online libraries and media left without files; return counts."""
    with dbmod.write(db):
        files = db.execute(f"DELETE FROM files WHERE id IN (SELECT f.id {_MISSING_FILES})").rowcount
        media = db.execute(f"DELETE FROM media WHERE id IN (SELECT m.id {_ORPHAN_MEDIA})").rowcount
    log.info("purged %d missing files and %d media", files, media)
    return PurgeCount(files, media)
