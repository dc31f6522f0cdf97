"""The SQLite database: opening it safely, the write transaction, and the schema migrations."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from services.errors import StorageError
from services.fsutil import Mount, mount_of

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

migrations = Migrations("lvs")


def check_local_disk(path: Path, mounts: list[Mount] | None = None) -> None:
    """Raise StorageError when `path` is on a network filesystem, where SQLite locking breaks."""
    mount = mount_of(path, mounts)
    if mount and mount.is_network:
        raise StorageError(
            f"LVS_DATA_DIR: {path} is on a network filesystem ({mount.fstype} at {mount.point}); "
            "the database needs a local disk — point LVS_DATA_DIR at a local folder "
            "(the media folders may stay on the network)"
        )


def connect(db_path: Path) -> Database:
    """Return a connection for this thread: WAL, foreign keys, busy timeout, autocommit mode.

    Autocommit (isolation_level=None) leaves transactions to `write()`, which takes the write lock
    up front with BEGIN IMMEDIATE; a deferred transaction that upgrades to a write fails at once
    with "database is locked" instead of waiting.
    """
    try:
        conn = sqlite3.connect(str(db_path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database {db_path}: {exc}") from None
    return Database(conn)


def open_db(data_dir: Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the library database in `data_dir` and bring its schema up to date."""
    check_local_disk(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"LVS_DATA_DIR: cannot create {data_dir}: {exc.strerror}") from None
    db = connect(data_dir / "library.db")
    if migrate:
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"database {data_dir / 'library.db'}: {exc}") from None
    return db


@contextmanager
def write(db: Database) -> Iterator[Database]:
    """Run the block in one BEGIN IMMEDIATE transaction; roll back if it raises."""
    if db.conn.in_transaction:
        # Nested: sqlite-utils turns this into a savepoint inside the outer transaction.
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def _run_script(db: Database, script: str) -> None:
    """Execute statements one by one: sqlite3's executescript() would COMMIT the migration's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement.strip()[:60]}")


@migrations()
def m0001_library(db: Database) -> None:
    """Create libraries, folders, media, streams, files, parse results, probe errors, scans."""
    _run_script(
        db,
        """
        CREATE TABLE libraries (
            id INTEGER PRIMARY KEY,
            root TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            is_network INTEGER NOT NULL DEFAULT 0,
            is_vr INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'new',          -- new | online | offline
            state_reason TEXT,
            added_at REAL NOT NULL,
            last_scan_at REAL
        );
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
            path BLOB NOT NULL,                          -- raw bytes, relative to the root
            rel_path TEXT NOT NULL,                      -- for display and URLs
            name TEXT NOT NULL,
            present INTEGER NOT NULL DEFAULT 1,
            digest BLOB,                                 -- of its media entries at the last scan
            file_count INTEGER NOT NULL DEFAULT 0,       -- media files in it at the last scan
            UNIQUE (library_id, path)
        );
        CREATE INDEX folders_parent ON folders (parent_id);
        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            media_hash TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,                          -- video | picture
            size INTEGER NOT NULL,
            probe_status TEXT NOT NULL DEFAULT 'pending',-- pending | ok | failed
            container TEXT,
            duration REAL,
            width INTEGER,
            height INTEGER,
            fps REAL,
            bitrate INTEGER,
            video_codec TEXT,
            audio_codec TEXT,
            rotation INTEGER NOT NULL DEFAULT 0,
            taken_at TEXT,
            orientation INTEGER,
            added_at REAL NOT NULL,
            probed_at REAL
        );
        CREATE INDEX media_added ON media (added_at);
        CREATE INDEX media_probe ON media (probe_status);
        CREATE TABLE streams (
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            type TEXT NOT NULL,                          -- video | audio | subtitle | data
            codec TEXT,
            profile TEXT,
            bit_depth INTEGER,
            width INTEGER,
            height INTEGER,
            fps REAL,
            bitrate INTEGER,
            channels INTEGER,
            language TEXT,
            title TEXT,
            is_default INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (media_id, idx)
        );
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            media_id INTEGER REFERENCES media(id) ON DELETE SET NULL,  -- NULL: cannot be identified
            library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
            folder_id INTEGER NOT NULL REFERENCES folders(id),
            path BLOB NOT NULL,                          -- raw bytes, relative to the root
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            present INTEGER NOT NULL DEFAULT 1,
            missing_since REAL,
            first_seen REAL NOT NULL,
            UNIQUE (library_id, path)
        );
        CREATE INDEX files_media ON files (media_id);
        CREATE INDEX files_folder ON files (folder_id, present);
        CREATE TABLE parses (
            file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            episode_title TEXT,
            year INTEGER,
            season INTEGER,
            episode INTEGER,
            quality TEXT,
            hdr TEXT,
            codec TEXT,
            projection TEXT NOT NULL DEFAULT 'flat',   -- flat | 180 | 360 | fisheye
            stereo TEXT,                               -- mono | sbs | tb | NULL (not in the name)
            eye_swap INTEGER NOT NULL DEFAULT 0,
            lens TEXT,
            fov INTEGER,
            projection_source TEXT NOT NULL DEFAULT 'none'
        );
        CREATE TABLE probe_errors (
            file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            size INTEGER NOT NULL,                       -- the file's size and mtime when it failed:
            mtime_ns INTEGER NOT NULL,                   -- it is not retried until they change
            failed_at REAL NOT NULL
        );
        CREATE TABLE scans (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            finished_at REAL,
            full INTEGER NOT NULL DEFAULT 0,
            scope TEXT,
            new INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            moved INTEGER NOT NULL DEFAULT 0,
            missing INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            offline TEXT,
            error TEXT
        );
        """,
    )


@migrations()
def m0002_browse_and_watch_state(db: Database) -> None:
    """Add browse indexes (keyset paging per sort), users with a default user, and watch state.

    Sorting a folder by duration needs the duration beside the folder in one index, so files get
    a copy of media.duration (`sort_duration`, named apart so that `duration` stays unambiguous
    in joins) that triggers keep in step; the scanner need not know. The partial
    indexes hold only what a listing shows (present, identified files); the one for the default
    sort, by name, also covers the columns a card reads from files. watch_state is keyed by
    user from the start: the accounts issue adds users, and the default user (id 1) keeps
    whatever was watched before accounts existed.
    """
    _run_script(
        db,
        """
        ALTER TABLE files ADD COLUMN sort_duration REAL NOT NULL DEFAULT 0;
        UPDATE files SET sort_duration = coalesce(
            (SELECT m.duration FROM media m WHERE m.id = files.media_id), 0);
        CREATE TRIGGER files_duration_insert AFTER INSERT ON files WHEN NEW.media_id IS NOT NULL
        BEGIN
            UPDATE files SET sort_duration = coalesce(
                (SELECT duration FROM media WHERE id = NEW.media_id), 0) WHERE id = NEW.id;
        END;
        CREATE TRIGGER files_duration_media AFTER UPDATE OF media_id ON files
        BEGIN
            UPDATE files SET sort_duration = coalesce(
                (SELECT duration FROM media WHERE id = NEW.media_id), 0) WHERE id = NEW.id;
        END;
        CREATE TRIGGER media_duration AFTER UPDATE OF duration ON media
        BEGIN
            UPDATE files SET sort_duration = coalesce(NEW.duration, 0) WHERE media_id = NEW.id;
        END;
        CREATE INDEX files_by_name
            ON files (folder_id, name COLLATE NOCASE, id, media_id, size, first_seen, sort_duration, present)
            WHERE present = 1 AND media_id IS NOT NULL;
        CREATE INDEX files_by_added ON files (folder_id, first_seen, id)
            WHERE present = 1 AND media_id IS NOT NULL;
        CREATE INDEX files_by_size ON files (folder_id, size, id)
            WHERE present = 1 AND media_id IS NOT NULL;
        CREATE INDEX files_by_duration ON files (folder_id, sort_duration, id)
            WHERE present = 1 AND media_id IS NOT NULL;
        CREATE INDEX folders_rel_path ON folders (library_id, rel_path);
        CREATE INDEX parses_title ON parses (title COLLATE NOCASE);
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL DEFAULT 'admin',          -- admin | viewer
            created_at REAL NOT NULL
        );
        INSERT INTO users (id, name, role, created_at)
            VALUES (1, 'default', 'admin', CAST(strftime('%s', 'now') AS REAL));
        CREATE TABLE watch_state (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            position REAL NOT NULL DEFAULT 0,            -- seconds to resume at; 0: from the start
            duration REAL,                               -- as the player reported it
            watched INTEGER NOT NULL DEFAULT 0,
            play_count INTEGER NOT NULL DEFAULT 0,
            last_played REAL,
            viewing TEXT,                                -- the player's id of the last counted viewing
            PRIMARY KEY (user_id, media_id)
        );
        CREATE INDEX watch_state_recent ON watch_state (user_id, last_played);
        """,
    )


@migrations()
def m0003_thumbs(db: Database) -> None:
    """Record each thumbnail and sprite made or failed, for the content (media_hash) it was made of.

    A failure keeps its reason and is not tried again until the content changes (a new
    media_hash) or `flask thumbnails --all` asks for it; a row for an older media_hash of the
    same media is as good as none.
    """
    _run_script(
        db,
        """
        CREATE TABLE thumbs (
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                          -- thumbnail | sprite
            media_hash TEXT NOT NULL,                    -- the content it was made from
            status TEXT NOT NULL,                        -- ok | failed
            reason TEXT,
            made_at REAL NOT NULL,
            seconds REAL,                                -- how long making it took
            PRIMARY KEY (media_id, kind)
        );
        CREATE INDEX thumbs_failed ON thumbs (kind, status);
        """,
    )
