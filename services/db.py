"""The SQLite database: opening it safely, the write transaction, and the schema migrations."""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from services.errors import StorageError
from services.fsutil import Mount, mount_of

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
# Whenever the write-ahead log starts again (all of it checkpointed, no reader left on it), its
# file is cut back to this size; without it, the file keeps its largest size for good (issue 20;
# services/operate/wal.py empties it on a timer too).
JOURNAL_SIZE_LIMIT = 16 << 20

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
        # NORMAL in WAL mode: a commit survives the server being killed; a power cut or an OS
        # crash may lose the last commits before the next checkpoint, never the database (README).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
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
    if not migrate:
        return connect(data_dir / "library.db")
    # Several gunicorn workers start at once on a fresh data dir. One at a time: the first turns
    # on WAL (a switch that does not wait on the busy timeout) and migrates; the others then find
    # nothing to do (a migration's own transaction would let two processes create one table).
    with open(data_dir / "migrate.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        db = connect(data_dir / "library.db")
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            db.close()
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


MEMO_ENTRIES = 1024  # values a thread's memo holds before it starts again empty
WAL_INDEX_HEADER = 96  # bytes: the wal-index header, twice (sqlite.org/walformat.html §2.2)
WATCHES = 8  # databases a process watches at once (a server has one)
_memos = threading.local()
_watches: dict[str, WalWatch | None] = {}
_watches_lock = threading.Lock()
_alive: list[WalWatch] = []  # every watch until retire() has closed it: never collected


class WalWatch:
    """SQLite's own change counter for one database, read without asking SQLite.

    In WAL mode every commit — by any connection of any process — rewrites the wal-index header
    at the start of the `-shm` file (its change counter, frame count, salts and checksums),
    which every reader compares to know whether the database changed: the file format
    (walformat.html) every SQLite version sharing the database must keep. Mapped read-only here,
    it costs a 96-byte copy to look at — no system call, no lock, the GIL kept — where a
    `PRAGMA data_version` costs a read transaction (file locks, ~60 µs a request in a busy
    gunicorn worker, bench B5). A torn read, mid-commit, only looks like a change.

    The watch keeps a connection of its own open for as long as it lives: while a process has
    the database open, no other process may truncate or delete the -shm file (SQLite does so
    only as the sole user), so the mapping always shows the live header.

    What says "open" to the other processes is SQLite's read lock on the -shm's DMS byte, a
    POSIX lock — and closing any descriptor of a file drops every POSIX lock the process holds
    on it (its WAL read and write locks too). So the descriptor mapped through stays open, and
    is closed (`retire`) only once no other descriptor in the process refers to that file: a
    watch that closed it at once left its process holding nothing, and the next process to open
    the database (a respawned worker, a `flask` command) found itself the first, truncated the
    -shm and killed every process reading a mapping of it with SIGBUS (bench b18).
    """

    def __init__(self, db_path: str) -> None:
        self.conn = sqlite3.connect(db_path, check_same_thread=False)
        try:
            mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                raise OSError(f"journal mode {mode}")
            if os.stat(db_path + "-shm").st_size < WAL_INDEX_HEADER:
                raise OSError("no wal-index header yet")
            # Neither this descriptor nor the mapping's copy of it may close while SQLite holds
            # locks on the file (a failed mapping leaves it open for that reason): see retire().
            self.fd = os.open(db_path + "-shm", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.conn.close()
            raise
        self.file = os.fstat(self.fd)
        self.map = mmap.mmap(self.fd, WAL_INDEX_HEADER, access=mmap.ACCESS_READ)
        self.retired = False
        _alive.append(self)

    def stamp(self) -> Any:
        """Return the header as it is now: a different value means a commit happened."""
        try:
            return self.map[:WAL_INDEX_HEADER]
        except ValueError:  # closed by retire(): a memo still holding it sees a change each time
            return object()

    def retire(self) -> None:
        """Let go of the database: its connection now, the mapping once nothing else in the
        process has the -shm open (then no lock of SQLite's can go with it)."""
        self.retired = True
        self.conn.close()
        for watch in [w for w in _alive if w.retired and not _opened_elsewhere(w.file)]:
            watch.map.close()  # and its copy of the descriptor
            os.close(watch.fd)
            _alive.remove(watch)


def _opened_elsewhere(file: os.stat_result) -> bool:
    """Return whether a descriptor of this process other than the watches' own (each has two:
    its own and its mapping's copy) refers to `file`; True where /proc cannot say."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return True
    opened = 0
    for name in names:
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own descriptor, or one closed since
        opened += (st.st_dev, st.st_ino) == (file.st_dev, file.st_ino)
    ours = sum(2 for w in _alive if (w.file.st_dev, w.file.st_ino) == (file.st_dev, file.st_ino))
    return opened > ours


def _watch(conn: sqlite3.Connection) -> WalWatch | None:
    """Return the process's WalWatch of the database `conn` has open, None where it cannot
    work (not WAL, a temporary or in-memory database): then data_version is asked instead."""
    path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not path:
        return None
    with _watches_lock:
        if path not in _watches:
            while len(_watches) >= WATCHES:  # tests open many; retired, not closed: in use
                dropped = _watches.pop(next(iter(_watches)))
                if dropped is not None:
                    dropped.retire()
            try:
                _watches[path] = WalWatch(path)
            except (OSError, sqlite3.Error) as exc:
                log.info("database %s: changes found by data_version (%s)", path, exc)
                _watches[path] = None
        return _watches[path]


class Memo:
    """Values read from the database by one connection, kept while the database is unchanged."""

    __slots__ = ("conn", "watch", "stamp", "values")

    def __init__(self, conn: sqlite3.Connection, watch: WalWatch | None) -> None:
        self.conn = conn
        self.watch = watch
        self.stamp = _stamp(conn, watch)
        self.values: dict[Any, Any] = {}


def _stamp(conn: sqlite3.Connection, watch: WalWatch | None) -> Any:
    if watch is not None:
        return watch.stamp()
    return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes


def memo(db: Database) -> dict[Any, Any]:
    """Return this thread's memo for `db`'s connection, emptied when the database has changed.

    A value kept here (who a session cookie signs in, where a media item's file lies) is only
    used while no commit has happened since it was read — by any connection, in any process
    (the gunicorn workers, a `flask` command, even the sqlite3 shell) or by this one — so a
    revoked session, a disabled account or a moved file counts from the very next request.
    What says so is SQLite's own change counter, the wal-index header (WalWatch: a 96-byte
    compare); without WAL, `PRAGMA data_version` and the connection's `total_changes` (its own
    writes, which data_version does not count). Any commit empties it, even one that changed
    nothing the values depend on: correct without a list of what matters.

    The caller asks before it reads the database for a value it stores, and must not be inside
    a transaction (its snapshot could be older than the stamp).
    """
    conn = db.conn
    m: Memo | None = getattr(_memos, "memo", None)
    if m is None or m.conn is not conn:
        m = _memos.memo = Memo(conn, _watch(conn))
        return m.values
    stamp = _stamp(conn, m.watch)
    if stamp != m.stamp:
        m.stamp = stamp
        m.values = {}
    elif len(m.values) >= MEMO_ENTRIES:
        m.values.clear()
    return m.values


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


@migrations()
def m0004_accounts(db: Database) -> None:
    """Add accounts: passwords, passkeys, server-side sessions, API tokens and sign-in counters.

    The default user (id 1) has no password: /setup (or `flask create-user --admin`) fills it in
    as the first admin, so what was recorded before accounts existed becomes that admin's.
    """
    _run_script(
        db,
        """
        ALTER TABLE users ADD COLUMN password_hash TEXT;
        ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN webauthn_handle BLOB;
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,                 -- sha256 of the cookie's token
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            expires_at REAL NOT NULL,                    -- slides forward as the session is used
            user_agent TEXT NOT NULL DEFAULT '',
            ip TEXT NOT NULL DEFAULT '',
            method TEXT NOT NULL DEFAULT 'password'      -- password | passkey | setup
        );
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE TABLE passkeys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            credential_id BLOB NOT NULL UNIQUE,
            public_key BLOB NOT NULL,
            sign_count INTEGER NOT NULL DEFAULT 0,
            name TEXT NOT NULL,
            transports TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used REAL
        );
        CREATE INDEX passkeys_user ON passkeys (user_id);
        CREATE TABLE webauthn_challenges (
            handle_hash TEXT PRIMARY KEY,
            challenge BLOB NOT NULL,
            kind TEXT NOT NULL,                          -- register | login
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            expires_at REAL NOT NULL
        );
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used REAL
        );
        CREATE TABLE rate_hits (
            key TEXT NOT NULL,
            window_start INTEGER NOT NULL,
            hits INTEGER NOT NULL,
            PRIMARY KEY (key, window_start)
        );
        """,
    )


# The search index rows of the files matching a condition on `f` (m0005): the parsed title, the
# file name, the folder's path and the media's tags, keyed by files.id. Only files a listing
# shows (present, identified) are indexed, so a ranked page can be cut inside the FTS query.
_FTS_ROWS = """
    INSERT INTO search_fts (rowid, title, name, folder, tags)
    SELECT f.id, trim(coalesce(p.title, '') || ' ' || coalesce(p.episode_title, '')), f.name,
           coalesce(fo.rel_path, ''),
           coalesce((SELECT group_concat(t.name, ' ') FROM media_tags mt
                     JOIN tags t ON t.id = mt.tag_id WHERE mt.media_id = f.media_id), '')
    FROM files f LEFT JOIN parses p ON p.file_id = f.id LEFT JOIN folders fo ON fo.id = f.folder_id
    WHERE f.present = 1 AND f.media_id IS NOT NULL AND ({where});"""


def _fts_refresh(where: str) -> str:
    """Return trigger statements that rebuild the search rows of the files matching `where`."""
    return f"DELETE FROM search_fts WHERE rowid IN (SELECT f.id FROM files f WHERE {where});" + (
        _FTS_ROWS.format(where=where)
    )


@migrations()
def m0005_organize(db: Database) -> None:
    """Add tags, ratings, favourites, playlists, markers, the search index and a change counter.

    The FTS5 index (one row per file, rowid = files.id) is kept in step by triggers on files,
    parses, folders, tags and media_tags, so the scanner need not know it exists. `prefix='2 3'`
    indexes make short prefixes cheap (SPEC §5 traps); search_vocab (its terms) lets a longer
    prefix be expanded to the words it stands for (services/organize/search.py).
    organize_generation counts changes to user metadata (tags, ratings, favourites, play counts):
    services/organize/metacache.py compares it per
    read, so a cache in one gunicorn process never serves what another process changed.
    """
    triggers = {
        "files_fts_insert AFTER INSERT ON files": _FTS_ROWS.format(where="f.id = NEW.id"),
        "files_fts_update AFTER UPDATE OF name, folder_id, media_id, present ON files": _fts_refresh(
            "f.id = NEW.id"
        ),
        "files_fts_delete AFTER DELETE ON files": "DELETE FROM search_fts WHERE rowid = OLD.id;",
        "parses_fts_insert AFTER INSERT ON parses": _fts_refresh("f.id = NEW.file_id"),
        "parses_fts_update AFTER UPDATE ON parses": _fts_refresh("f.id = NEW.file_id"),
        "parses_fts_delete AFTER DELETE ON parses": _fts_refresh("f.id = OLD.file_id"),
        "folders_fts_update AFTER UPDATE OF rel_path ON folders": _fts_refresh(
            "f.folder_id = NEW.id"
        ),
        "media_tags_fts_insert AFTER INSERT ON media_tags": _fts_refresh(
            "f.media_id = NEW.media_id"
        )
        + "UPDATE organize_generation SET n = n + 1;",
        "media_tags_fts_delete AFTER DELETE ON media_tags": _fts_refresh(
            "f.media_id = OLD.media_id"
        )
        + "UPDATE organize_generation SET n = n + 1;",
        "tags_fts_update AFTER UPDATE OF name ON tags": _fts_refresh(
            "f.media_id IN (SELECT media_id FROM media_tags WHERE tag_id = NEW.id)"
        )
        + "UPDATE organize_generation SET n = n + 1;",
    }
    # Every change to the index counts in search_generation: services/organize/search.py keeps the
    # words a prefix stands for until the index changes.
    triggers = {
        head: body + "UPDATE search_generation SET n = n + 1;" for head, body in triggers.items()
    }
    for table in ("ratings", "favorites"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            triggers[f"{table}_gen_{event.lower()} AFTER {event} ON {table}"] = (
                "UPDATE organize_generation SET n = n + 1;"
            )
    triggers[
        "watch_state_gen_plays AFTER UPDATE OF play_count ON watch_state "
        "WHEN OLD.play_count IS NOT NEW.play_count"
    ] = "UPDATE organize_generation SET n = n + 1;"
    triggers["watch_state_gen_insert AFTER INSERT ON watch_state"] = (
        "UPDATE organize_generation SET n = n + 1;"
    )
    _run_script(
        db,
        """
        CREATE TABLE organize_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO organize_generation (id, n) VALUES (1, 0);
        CREATE TABLE search_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO search_generation (id, n) VALUES (1, 0);
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created_at REAL NOT NULL
        );
        CREATE TABLE media_tags (
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            PRIMARY KEY (media_id, tag_id)
        ) WITHOUT ROWID;
        CREATE INDEX media_tags_by_tag ON media_tags (tag_id, media_id);
        CREATE TABLE ratings (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            rated_at REAL NOT NULL,
            PRIMARY KEY (user_id, media_id)
        );
        CREATE INDEX ratings_by_media ON ratings (media_id, stars);
        CREATE TABLE favorites (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            added_at REAL NOT NULL,
            PRIMARY KEY (user_id, media_id)
        );
        CREATE TABLE playlists (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX playlists_by_user ON playlists (user_id, name);
        CREATE TABLE playlist_items (
            id INTEGER PRIMARY KEY,
            playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            position INTEGER NOT NULL
        );
        CREATE INDEX playlist_items_order ON playlist_items (playlist_id, position);
        CREATE TABLE markers (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            seconds REAL NOT NULL,
            label TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX markers_by_media ON markers (media_id, seconds);
        CREATE VIRTUAL TABLE search_fts USING fts5 (
            title, name, folder, tags, prefix = '2 3', tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE search_vocab USING fts5vocab (search_fts, 'row');
        """
        + _FTS_ROWS.format(where="1")
        + "".join(
            f"\nCREATE TRIGGER {head}\nBEGIN\n{body}\nEND;" for head, body in triggers.items()
        ),
    )


@migrations()
def m0007_mounts(db: Database) -> None:
    """Remember which folders are mount points, so an unmounted share is offline, not emptied."""
    db.execute("ALTER TABLE folders ADD COLUMN is_mount INTEGER NOT NULL DEFAULT 0")


@migrations()
def m0008_user_sort_indexes(db: Database) -> None:
    """Index the user's ratings and plays by key, for the rating and views sorts (services/browse).

    A page in those sorts sorts only the folder's files the user rated or played; walked by key,
    SQLite sorts one key's files at a time and stops when the page is full. Both tables hold
    one row per user and item, so the indexes are as small as the users' own data.
    """
    _run_script(
        db,
        """
        CREATE INDEX ratings_by_user ON ratings (user_id, stars, media_id);
        CREATE INDEX watch_state_by_plays ON watch_state (user_id, play_count, media_id);
        """,
    )


@migrations()
def m0009_forget_vanished_failures(db: Database) -> None:
    """Forget "failures" that were files moved while a scan read them, and probe them again.

    A file renamed between a scan's walk and its probe was recorded as failed ("cannot read: No
    such file or directory") and, its size and mtime never changing, never tried again: a good
    video reported broken for good (issue 20). Scans no longer record that; this clears what
    they did record, and the next scan probes those media where their files are now.
    """
    _run_script(
        db,
        """
        UPDATE media SET probe_status = 'pending' WHERE probe_status = 'failed' AND id IN (
            SELECT f.media_id FROM probe_errors e JOIN files f ON f.id = e.file_id
            WHERE e.reason IN ('cannot read: No such file or directory',
                               'cannot read: Not a directory'));
        DELETE FROM probe_errors WHERE reason IN ('cannot read: No such file or directory',
                                                  'cannot read: Not a directory');
        """,
    )


# Whether the file `f` (in folder `fo`, library `l`) lies in a VR folder: marked by an admin, or
# named as LVS_VR_FOLDERS says (the library's own folder name counts), itself or an ancestor.
IN_VR_FOLDER_SQL = (
    "(EXISTS (SELECT 1 FROM vr_folders v WHERE v.root = l.root AND (v.rel_path = '' "
    "OR v.rel_path = fo.rel_path OR substr(fo.rel_path, 1, length(v.rel_path) + 1) = "
    "v.rel_path || '/')) OR EXISTS (SELECT 1 FROM vr_folder_names n WHERE instr('/' || "
    "lower(l.name) || '/' || lower(fo.rel_path) || '/', '/' || n.name || '/') > 0))"
)


def projection_rows_sql(where: str) -> str:
    """Return statements that recompute the `projections` rows of the files matching `where`.

    Nested selects rather than a WITH: SQLite refuses common table expressions in triggers.
    Mirrors resolve() and stereo_for_frame() step for step.
    """
    decided = (
        "SELECT f.id AS id, m.width AS w, m.height AS h, "
        "CASE WHEN o.media_id IS NOT NULL THEN 'override' "
        "     WHEN p.projection_source = 'filename' THEN 'filename' "
        f"    WHEN m.kind = 'video' AND {IN_VR_FOLDER_SQL} AND m.width > 0 AND m.height > 0 AND "
        "       (abs(m.width - 2 * m.height) <= m.width * 0.01 "
        "        OR abs(m.width - m.height) <= m.width * 0.01) THEN 'aspect' "
        "     ELSE 'none' END AS source, "
        "o.type AS o_type, o.stereo AS o_stereo, o.eye_swap AS o_swap, o.lens AS o_lens, "
        "p.projection AS p_type, p.stereo AS p_stereo, p.eye_swap AS p_swap, p.lens AS p_lens "
        "FROM files f JOIN media m ON m.id = f.media_id "
        "JOIN folders fo ON fo.id = f.folder_id JOIN libraries l ON l.id = f.library_id "
        "LEFT JOIN parses p ON p.file_id = f.id "
        "LEFT JOIN projection_overrides o ON o.media_id = f.media_id "
        f"WHERE {where}"
    )
    typed = (
        "SELECT id, w, h, source, "
        "CASE source WHEN 'override' THEN o_type WHEN 'filename' THEN p_type "
        "  WHEN 'aspect' THEN (CASE WHEN abs(w - 2 * h) <= w * 0.01 THEN '180' ELSE '360' END) "
        "  ELSE 'flat' END AS type, "
        "CASE source WHEN 'override' THEN o_stereo WHEN 'filename' THEN p_stereo "
        "  WHEN 'aspect' THEN (CASE WHEN abs(w - 2 * h) <= w * 0.01 THEN 'sbs' ELSE 'tb' END) "
        "  ELSE 'mono' END AS stereo, "
        "CASE source WHEN 'override' THEN o_swap WHEN 'filename' THEN p_swap ELSE 0 END AS swap, "
        "CASE source WHEN 'override' THEN o_lens WHEN 'filename' THEN p_lens END AS lens "
        f"FROM ({decided})"
    )
    known = "coalesce(w, 0) > 0 AND coalesce(h, 0) > 0"
    stereo = (
        "CASE WHEN stereo IS NOT NULL THEN stereo "
        f"WHEN type IN ('180', 'fisheye') THEN (CASE WHEN NOT ({known}) OR w >= 1.5 * h "
        "  THEN 'sbs' WHEN w <= 0.75 * h THEN 'tb' ELSE 'mono' END) "
        f"WHEN type = '360' AND {known} AND w >= 3 * h THEN 'sbs' "
        f"WHEN type = '360' AND {known} AND w < 1.5 * h THEN 'tb' "
        "ELSE 'mono' END"
    )
    full = (
        f"SELECT id, type, {stereo} AS stereo, swap, "
        "CASE WHEN type = 'fisheye' THEN lens END AS lens, source "
        f"FROM ({typed})"
    )
    return (
        f"DELETE FROM projections WHERE file_id IN (SELECT f.id FROM files f WHERE {where});\n"
        "INSERT INTO projections (file_id, type, stereo, eye_swap, lens, source) "
        "SELECT id, type, stereo, CASE WHEN stereo = 'mono' THEN 0 ELSE coalesce(swap, 0) END, "
        f"lens, source FROM ({full}) WHERE NOT (type = 'flat' AND stereo = 'mono');"
    )


@migrations()
def m0011_subtitles(db: Database) -> None:
    """Add subtitle sidecars, stream flags (forced, hearing impaired) and playback preferences.

    `subtitle_files` holds the subtitle files matched to the videos they belong to
    (services/library/subtitle_files.py), one row per file and video, kept by the scan; `status`
    is new (found, not read yet), ok or failed (with the reason). `playback_prefs` is each
    person's subtitle and audio choice, which the next video starts with.
    """
    _run_script(
        db,
        """
        CREATE TABLE subtitle_files (
            id INTEGER PRIMARY KEY,
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,  -- the video's
            path BLOB NOT NULL,                          -- raw bytes, relative to the root
            format TEXT NOT NULL,                        -- srt | vtt | ass | ssa | sub
            language TEXT,                               -- BCP 47 from the name: en, pt-BR
            title TEXT,
            forced INTEGER NOT NULL DEFAULT 0,
            sdh INTEGER NOT NULL DEFAULT 0,
            is_default INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',          -- new | ok | failed
            reason TEXT,
            encoding TEXT,                               -- as detected when read
            cues INTEGER,
            found_at REAL NOT NULL,
            UNIQUE (library_id, path, media_id)
        );
        CREATE INDEX subtitle_files_media ON subtitle_files (media_id);
        CREATE INDEX subtitle_files_folder ON subtitle_files (folder_id);
        CREATE INDEX subtitle_files_language ON subtitle_files (language, media_id);
        ALTER TABLE streams ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE streams ADD COLUMN hearing_impaired INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX streams_language ON streams (type, language, media_id);
        CREATE TABLE playback_prefs (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            subtitles_on INTEGER NOT NULL DEFAULT 0,
            subtitle_language TEXT,                      -- BCP 47
            audio_language TEXT,                         -- BCP 47
            updated_at REAL NOT NULL
        );
        """,
    )


@migrations()
def m0012_projections(db: Database) -> None:
    """Add the VR projection of each file, admins' overrides and VR folders (issue 14).

    services/playback/projection.py says how a projection is decided; `projections` holds the
    result for every file that is not flat mono, kept in step by the triggers below (the scanner
    need not know). Overrides and marked folders are user data (exported); `vr_folder_names`
    mirrors the LVS_VR_FOLDERS setting (synced at start).
    """
    triggers = {
        "parses_projection_insert AFTER INSERT ON parses": "f.id = NEW.file_id",
        "parses_projection_update AFTER UPDATE ON parses": "f.id = NEW.file_id",
        "files_projection_insert AFTER INSERT ON files": "f.id = NEW.id",
        "files_projection_update AFTER UPDATE OF media_id, folder_id ON files": "f.id = NEW.id",
        "media_projection_size AFTER UPDATE OF width, height ON media": "f.media_id = NEW.id",
        "overrides_projection_insert AFTER INSERT ON projection_overrides": (
            "f.media_id = NEW.media_id"
        ),
        "overrides_projection_update AFTER UPDATE ON projection_overrides": (
            "f.media_id = NEW.media_id"
        ),
        "overrides_projection_delete AFTER DELETE ON projection_overrides": (
            "f.media_id = OLD.media_id"
        ),
        "vr_folders_projection_insert AFTER INSERT ON vr_folders": (
            "f.library_id IN (SELECT id FROM libraries WHERE root = NEW.root)"
        ),
        "vr_folders_projection_delete AFTER DELETE ON vr_folders": (
            "f.library_id IN (SELECT id FROM libraries WHERE root = OLD.root)"
        ),
    }
    schema = """
        CREATE TABLE projections (
            file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
            type TEXT NOT NULL,                          -- flat | 180 | 360 | fisheye
            stereo TEXT NOT NULL,                        -- mono | sbs | tb
            eye_swap INTEGER NOT NULL DEFAULT 0,
            lens TEXT,                                   -- fisheye lens, services/playback/projection.py
            source TEXT NOT NULL                         -- override | filename | aspect
        );
        CREATE INDEX projections_type ON projections (type, stereo);
        CREATE TABLE projection_overrides (
            media_id INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,
            type TEXT NOT NULL,
            stereo TEXT NOT NULL,
            eye_swap INTEGER NOT NULL DEFAULT 0,
            lens TEXT,
            set_by INTEGER,                              -- users.id of the admin (no FK: export order)
            set_at REAL NOT NULL
        );
        CREATE TABLE vr_folders (
            root TEXT NOT NULL,                          -- libraries.root: survives a fresh index
            rel_path TEXT NOT NULL,                      -- '' for the whole library
            marked_at REAL NOT NULL,
            PRIMARY KEY (root, rel_path)
        );
        CREATE TABLE vr_folder_names (name TEXT PRIMARY KEY);  -- from LVS_VR_FOLDERS, lower-cased
        """
    schema += "INSERT INTO vr_folder_names (name) VALUES ('vr');"
    schema += "".join(
        f"\nCREATE TRIGGER {head}\nBEGIN\n{projection_rows_sql(where)}\nEND;"
        for head, where in triggers.items()
    )
    _run_script(db, schema + "\n" + projection_rows_sql("1"))


@migrations()
def m0013_metadata_permission(db: Database) -> None:
    """Add the per-account permission to edit shared metadata: tags, markers, projection (issue 16).

    Admins always may; a viewer may only once an admin allows it, so it starts off for every
    existing and new viewer.
    """
    db.execute("ALTER TABLE users ADD COLUMN can_edit_metadata INTEGER NOT NULL DEFAULT 0")


@migrations()
def m0014_sidecars_shows_movies(db: Database) -> None:
    """Add sidecar files (.nfo, artwork, subtitles), their metadata, and shows, seasons, movies.

    sidecars: what the walk saw beside the media (services/library/sidecars.py), one row per file,
    'pending' until the domain that reads its kind has read it. nfo and artwork hold what was read
    (services/shows). file_meta says per file what it is (episode, movie, other), where it belongs
    and which .nfo and picture describe it; shows, seasons and movies are the groups, with counts
    kept by the regrouping, so their pages page by key without grouping 100k rows. shows_state
    asks for one regrouping of the whole library (an existing library gets its shows at once).
    """
    _run_script(
        db,
        """
        CREATE TABLE sidecars (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            raw_name BLOB NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,                          -- nfo | artwork | subtitle
            role TEXT,                                   -- artwork: poster, season:1:poster, video:thumb
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | ok | failed
            reason TEXT,
            UNIQUE (folder_id, raw_name)
        );
        CREATE INDEX sidecars_pending ON sidecars (status, kind) WHERE status = 'pending';
        CREATE TABLE nfo (
            sidecar_id INTEGER PRIMARY KEY REFERENCES sidecars(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                          -- movie | tvshow | episodedetails
            title TEXT,
            original_title TEXT,
            sort_title TEXT,
            year INTEGER,
            plot TEXT,
            tagline TEXT,
            runtime INTEGER,                             -- minutes
            premiered TEXT,                              -- premiered or aired, YYYY-MM-DD
            rating REAL,                                 -- 0-10, the file's own
            season INTEGER,
            episode INTEGER,
            genres TEXT NOT NULL DEFAULT '[]',           -- JSON lists
            studios TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]',
            people TEXT NOT NULL DEFAULT '[]',           -- [{"name","role","type"}]
            uniqueids TEXT NOT NULL DEFAULT '{}'         -- {"imdb": "tt..", "tmdb": ".."}
        );
        CREATE TABLE artwork (
            sidecar_id INTEGER PRIMARY KEY REFERENCES sidecars(id) ON DELETE CASCADE,
            key TEXT NOT NULL,                           -- the cached JPEG's name (content-derived)
            width INTEGER NOT NULL,
            height INTEGER NOT NULL
        );
        CREATE TABLE shows (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,                    -- the normalised title
            title TEXT NOT NULL,
            sort_title TEXT NOT NULL COLLATE NOCASE,
            year INTEGER,
            nfo_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            poster_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            fanart_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            episodes INTEGER NOT NULL DEFAULT 0,         -- present files
            seasons INTEGER NOT NULL DEFAULT 0,
            added_at REAL NOT NULL
        );
        CREATE INDEX shows_by_title ON shows (sort_title, id) WHERE episodes > 0;
        CREATE TABLE seasons (
            show_id INTEGER NOT NULL REFERENCES shows(id) ON DELETE CASCADE,
            season INTEGER NOT NULL,                     -- 0: specials
            poster_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            episodes INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (show_id, season)
        );
        CREATE TABLE movies (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,                    -- normalised title and year
            title TEXT NOT NULL,
            sort_title TEXT NOT NULL COLLATE NOCASE,
            year INTEGER,
            nfo_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            poster_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            rating REAL,                                 -- the file's (0-10); users' stars win on show
            quality INTEGER NOT NULL DEFAULT 0,          -- the best version's figure
            versions INTEGER NOT NULL DEFAULT 0,         -- present files
            added_at REAL NOT NULL,
            -- Keys of the newest/best-first sorts, negated so one ascending index walk (and a
            -- row-value seek for the next page) serves them with titles still A to Z.
            year_key INTEGER GENERATED ALWAYS AS (-coalesce(year, 0)) VIRTUAL,
            rating_key REAL GENERATED ALWAYS AS (-coalesce(rating, -1)) VIRTUAL,
            quality_key INTEGER GENERATED ALWAYS AS (-quality) VIRTUAL,
            added_key REAL GENERATED ALWAYS AS (-added_at) VIRTUAL
        );
        CREATE INDEX movies_by_title ON movies (sort_title, id) WHERE versions > 0;
        CREATE INDEX movies_by_year ON movies (year_key, sort_title, id) WHERE versions > 0;
        CREATE INDEX movies_by_added ON movies (added_key, sort_title, id) WHERE versions > 0;
        CREATE INDEX movies_by_rating ON movies (rating_key, sort_title, id) WHERE versions > 0;
        CREATE INDEX movies_by_quality ON movies (quality_key, sort_title, id) WHERE versions > 0;
        CREATE TABLE file_meta (
            file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                          -- episode | movie | other
            show_id INTEGER REFERENCES shows(id) ON DELETE SET NULL,
            movie_id INTEGER REFERENCES movies(id) ON DELETE SET NULL,
            season INTEGER,
            episode INTEGER,                             -- NULL: not numbered
            episode_end INTEGER,                         -- S01E01-E02: 2
            absolute INTEGER NOT NULL DEFAULT 0,         -- numbered through the show (EP12)
            nfo_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            art_id INTEGER REFERENCES sidecars(id) ON DELETE SET NULL,
            quality INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX file_meta_show ON file_meta (show_id, season, episode, file_id)
            WHERE show_id IS NOT NULL;
        CREATE INDEX file_meta_movie ON file_meta (movie_id) WHERE movie_id IS NOT NULL;
        CREATE TABLE shows_state (id INTEGER PRIMARY KEY CHECK (id = 1), regroup INTEGER NOT NULL);
        INSERT INTO shows_state (id, regroup) VALUES (1, 1);
        """,
    )


def _nfo_text(nfo_id: str) -> str:
    """Return SQL for the searchable words of an .nfo: titles, plot, genres, studios, people."""
    return f"""coalesce((SELECT trim(coalesce(n.title, '') || ' ' || coalesce(n.original_title, '')
        || ' ' || coalesce(n.plot, '') || ' '
        || coalesce((SELECT group_concat(value, ' ') FROM json_each(n.genres)), '') || ' '
        || coalesce((SELECT group_concat(value, ' ') FROM json_each(n.studios)), '') || ' '
        || coalesce((SELECT group_concat(json_extract(value, '$.name') || ' '
                     || coalesce(json_extract(value, '$.role'), ''), ' ')
                     FROM json_each(n.people)), ''))
        FROM nfo n WHERE n.sidecar_id = {nfo_id}), '')"""


# m0014b: a file's search row also holds what its .nfo and its movie's or show's .nfo say.
_GROUP_NFO = (
    "coalesce((SELECT nfo_id FROM movies WHERE id = fm.movie_id), "
    "(SELECT nfo_id FROM shows WHERE id = fm.show_id))"
)
_FTS_META = f"""coalesce((SELECT trim({_nfo_text("fm.nfo_id")} || ' ' ||
        CASE WHEN {_GROUP_NFO} IS NOT fm.nfo_id THEN {_nfo_text(_GROUP_NFO)} ELSE '' END)
    FROM file_meta fm WHERE fm.file_id = f.id), '')"""
_FTS_ROWS_META = _FTS_ROWS.replace(
    "(rowid, title, name, folder, tags)", "(rowid, title, name, folder, tags, meta)"
).replace(
    "WHERE mt.media_id = f.media_id), '')", f"WHERE mt.media_id = f.media_id), ''),\n{_FTS_META}"
)
_HAS_META = (
    "{row}.nfo_id IS NOT NULL OR {row}.movie_id IN (SELECT id FROM movies WHERE nfo_id IS NOT NULL) "
    "OR {row}.show_id IN (SELECT id FROM shows WHERE nfo_id IS NOT NULL)"
)


def _search_refresh(rows: str, where: str) -> str:
    """Return statements that rebuild the search rows (written by `rows`) of files matching `where`."""
    return f"DELETE FROM search_fts WHERE rowid IN (SELECT f.id FROM files f WHERE {where});" + (
        rows.format(where=where)
    )


def _search_triggers(rows: str) -> dict[str, str]:
    """Return the triggers (head: body) that keep the search index in step (m0014b, m0019).

    `rows` is the INSERT of the index rows of the files matching `{where}`; each body but the
    bumps of search_generation, which the caller appends.
    """
    org = "UPDATE organize_generation SET n = n + 1;"
    return {
        "files_fts_insert AFTER INSERT ON files": rows.format(where="f.id = NEW.id"),
        "files_fts_update AFTER UPDATE OF name, folder_id, media_id, present ON files": (
            _search_refresh(rows, "f.id = NEW.id")
        ),
        "files_fts_delete AFTER DELETE ON files": "DELETE FROM search_fts WHERE rowid = OLD.id;",
        "parses_fts_insert AFTER INSERT ON parses": _search_refresh(rows, "f.id = NEW.file_id"),
        "parses_fts_update AFTER UPDATE ON parses": _search_refresh(rows, "f.id = NEW.file_id"),
        "parses_fts_delete AFTER DELETE ON parses": _search_refresh(rows, "f.id = OLD.file_id"),
        "folders_fts_update AFTER UPDATE OF rel_path ON folders": _search_refresh(
            rows, "f.folder_id = NEW.id"
        ),
        "media_tags_fts_insert AFTER INSERT ON media_tags": _search_refresh(
            rows, "f.media_id = NEW.media_id"
        )
        + org,
        "media_tags_fts_delete AFTER DELETE ON media_tags": _search_refresh(
            rows, "f.media_id = OLD.media_id"
        )
        + org,
        "tags_fts_update AFTER UPDATE OF name ON tags": _search_refresh(
            rows, "f.media_id IN (SELECT media_id FROM media_tags WHERE tag_id = NEW.id)"
        )
        + org,
        "file_meta_fts_insert AFTER INSERT ON file_meta WHEN "
        + _HAS_META.format(row="NEW"): _search_refresh(rows, "f.id = NEW.file_id"),
        "file_meta_fts_delete AFTER DELETE ON file_meta WHEN "
        + _HAS_META.format(row="OLD"): _search_refresh(rows, "f.id = OLD.file_id"),
    }


@migrations()
def m0014b_search_metadata(db: Database) -> None:
    """Search what the .nfo files say: a fifth column, `meta`, in the search index (issue 17).

    FTS5 tables cannot gain a column, so the index is made again with it, and the triggers of
    m0005 that write its rows are made again to fill it; file_meta triggers refresh a file's row
    when the regrouping (services/shows) gives it, or takes from it, an .nfo. Files without any
    .nfo cost nothing new: their `meta` is empty.
    """

    gen = "UPDATE search_generation SET n = n + 1;"
    triggers = _search_triggers(_FTS_ROWS_META)
    drops = "".join(f"DROP TRIGGER IF EXISTS {head.split()[0]};\n" for head in triggers)
    _run_script(
        db,
        drops
        + """
        DROP TABLE search_vocab;
        DROP TABLE search_fts;
        CREATE VIRTUAL TABLE search_fts USING fts5 (
            title, name, folder, tags, meta,
            prefix = '2 3', tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE search_vocab USING fts5vocab (search_fts, 'row');
        """
        + _FTS_ROWS_META.format(where="1")
        + "".join(
            f"\nCREATE TRIGGER {head}\nBEGIN\n{body}{gen}\nEND;" for head, body in triggers.items()
        ),
    )


@migrations()
def m0015_live_changes(db: Database) -> None:
    """Add live_changes: a short log of what changed, for the open pages' change feed (issue 19).

    Triggers write one row per change an open page can show — a file appearing, going or moving
    (with its folder), a thumbnail made, a rating, favourite or tag changed — so the scanner,
    the preview makers and the organize services need not know the feed exists, and a change in
    any process counts. A page asks for rows after the last seq it saw (services/live/feed.py);
    nothing new costs one lookup of the largest seq. Every 256th row drops rows more than 8192
    behind: the log stays small, and a page that fell further behind reloads its regions.
    """
    now = "(julianday('now') - 2440587.5) * 86400.0"  # unixepoch('subsec') needs SQLite 3.42
    log_row = (
        "INSERT INTO live_changes (kind, media_id, folder_id, at) "
        f"VALUES ('{{kind}}', {{media}}, {{folder}}, {now});"
    )
    triggers = {
        "live_files_insert AFTER INSERT ON files WHEN NEW.media_id IS NOT NULL": log_row.format(
            kind="file", media="NEW.media_id", folder="NEW.folder_id"
        ),
        "live_files_update AFTER UPDATE OF present, media_id, folder_id, name ON files "
        "WHEN OLD.present IS NOT NEW.present OR OLD.media_id IS NOT NEW.media_id "
        "OR OLD.folder_id IS NOT NEW.folder_id OR OLD.name IS NOT NEW.name": log_row.format(
            kind="file", media="NEW.media_id", folder="NEW.folder_id"
        )
        + "INSERT INTO live_changes (kind, media_id, folder_id, at) SELECT 'file', OLD.media_id, "
        f"OLD.folder_id, {now} WHERE OLD.folder_id IS NOT NEW.folder_id "
        "OR OLD.media_id IS NOT NEW.media_id;",
        "live_files_delete AFTER DELETE ON files WHEN OLD.media_id IS NOT NULL": log_row.format(
            kind="file", media="OLD.media_id", folder="OLD.folder_id"
        ),
        "live_thumbs_insert AFTER INSERT ON thumbs WHEN NEW.status = 'ok'": log_row.format(
            kind="thumb", media="NEW.media_id", folder="NULL"
        ),
        "live_thumbs_update AFTER UPDATE ON thumbs WHEN NEW.status = 'ok'": log_row.format(
            kind="thumb", media="NEW.media_id", folder="NULL"
        ),
        "live_prune AFTER INSERT ON live_changes WHEN NEW.seq % 256 = 0": (
            "DELETE FROM live_changes WHERE seq <= NEW.seq - 8192;"
        ),
    }
    for table in ("ratings", "favorites", "media_tags"):
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            if table == "media_tags" and event == "UPDATE":
                continue
            triggers[f"live_{table}_{event.lower()} AFTER {event} ON {table}"] = log_row.format(
                kind="meta", media=f"{row}.media_id", folder="NULL"
            )
    _run_script(
        db,
        """
        CREATE TABLE live_changes (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,                          -- file | thumb | meta
            media_id INTEGER,
            folder_id INTEGER,
            at REAL NOT NULL
        );
        """
        + "".join(
            f"\nCREATE TRIGGER {head}\nBEGIN\n{body}\nEND;" for head, body in triggers.items()
        ),
    )


@migrations()
def m0016_vr_write_back(db: Database) -> None:
    """Add vr_write_back: what an admin lets DeoVR/HereSphere change (issue 15).

    One row per switched-on kind (rating, favorite, tags), with who switched it on and when;
    no row: off. LVS_VR_WRITE_BACK switches kinds on too (services/vrapi/players.py).
    """
    _run_script(
        db,
        """
        CREATE TABLE vr_write_back (
            name TEXT PRIMARY KEY CHECK (name IN ('rating', 'favorite', 'tags')),
            enabled_by INTEGER,
            enabled_at REAL NOT NULL
        );
        """,
    )


# m0019: a file's search row also holds the words of its projection (services/playback/
# projection.py, VRProjection.search_words), however it was decided. The lens's field of view is
# spelled out here as in projection.LENS_FOV (this module cannot import it); the tests compare.
PROJECTION_WORDS_SQL = """coalesce((SELECT trim(CASE x.type WHEN 'flat' THEN ''
        WHEN 'fisheye' THEN 'vr fisheye' || CASE WHEN coalesce(x.lens, 'fisheye') = 'fisheye'
            THEN '' ELSE ' ' || x.lens END || ' ' || CASE x.lens WHEN 'mkx200' THEN '200'
            WHEN 'mkx220' THEN '220' WHEN 'vrca220' THEN '220' WHEN 'rf52' THEN '190'
            WHEN 'fisheye190' THEN '190' ELSE '180' END
        ELSE 'vr ' || x.type END
        || CASE x.stereo WHEN 'mono' THEN '' ELSE ' 3d ' || x.stereo END)
    FROM projections x WHERE x.file_id = f.id), '')"""
_FTS_ROWS_PROJECTION = _FTS_ROWS_META.replace(
    _FTS_META, f"trim({_FTS_META} || ' ' ||\n{PROJECTION_WORDS_SQL})"
)
assert _FTS_ROWS_PROJECTION.count("FROM projections x") == 1


@migrations()
def m0019_search_projection(db: Database) -> None:
    """Search a file's projection: '180', '360', 'VR', '3D', 'fisheye' find it (issue 14).

    Names with projection tokens were found by their name; a file that is VR by its frame in a
    VR folder, or by an admin's override, was not. The `meta` column of its search row now ends
    with its projection's words ("vr 180 3d sbs"). `projections` is written only by the m0012
    triggers (overrides, VR folders, names, frame sizes, the folder-names setting), so two
    triggers on it refresh the file's search row whenever its projection row comes or goes; the
    m0014b triggers are made again to write the words too (the insert one as a refresh, since a
    projection row may have written the file's search row first). Files without a projection
    row (flat, the most) cost nothing new. The rows of files that have one are written anew.
    """
    gen = "UPDATE search_generation SET n = n + 1;"
    rows = _FTS_ROWS_PROJECTION
    triggers = _search_triggers(rows)
    triggers["files_fts_insert AFTER INSERT ON files"] = _search_refresh(rows, "f.id = NEW.id")
    triggers["projections_fts_insert AFTER INSERT ON projections"] = _search_refresh(
        rows, "f.id = NEW.file_id"
    )
    triggers["projections_fts_delete AFTER DELETE ON projections"] = _search_refresh(
        rows, "f.id = OLD.file_id"
    )
    drops = "".join(f"DROP TRIGGER IF EXISTS {head.split()[0]};\n" for head in triggers)
    _run_script(
        db,
        drops
        + _search_refresh(rows, "f.id IN (SELECT file_id FROM projections)")
        + f"\n{gen}"
        + "".join(
            f"\nCREATE TRIGGER {head}\nBEGIN\n{body}{gen}\nEND;" for head, body in triggers.items()
        ),
    )


# m0019b: the short side a file's resolution class (the browse filter's SD, 720p, 1080p, 4K) is
# decided by, kept beside the file as sort_duration is: a flat frame's short side; a VR video's
# from one eye's width, doubled for 180° and fisheye, read as a 16:9 frame's width (the width
# its badge is named by: services/playback/projection.py, class_side()). NULL: not probed.
CLASS_SIDE_SQL = """(SELECT CASE WHEN x.type IS NULL OR x.type = 'flat'
        THEN min(m.width, m.height)
        ELSE (CASE x.stereo WHEN 'sbs' THEN m.width / 2 ELSE m.width END)
            * (CASE x.type WHEN '360' THEN 9 ELSE 18 END) / 16 END
    FROM media m LEFT JOIN projections x ON x.file_id = files.id WHERE m.id = files.media_id)"""


@migrations()
def m0019b_resolution_class(db: Database) -> None:
    """Add files.class_side: what the resolution filter buckets a file by (issue 14).

    The filter read the frame's short side from the media row, which put a "4K" 3840×1920 180°
    video in 1080p and a "3K" 2880×2880 360° top/bottom one in 4K: a VR video's class is now
    that of one eye (CLASS_SIDE_SQL). Reading it from the projection row in the filter cost
    a lookup per file walked (a first filtered page of a 100k folder, which counts up to 10,000
    matches, ~1.3× slower); a column of the file's own row costs nothing. Triggers keep it in
    step with the frame (a probe), the file's media and its projection row (whose m0012
    triggers follow names, overrides and VR folders), each computing it from the current rows,
    so their order does not matter.
    """
    set_side = f"UPDATE files SET class_side = {CLASS_SIDE_SQL} WHERE {{where}};"
    triggers = {
        "files_class_insert AFTER INSERT ON files WHEN NEW.media_id IS NOT NULL": "id = NEW.id",
        "files_class_media AFTER UPDATE OF media_id ON files": "id = NEW.id",
        "media_class_size AFTER UPDATE OF width, height ON media": "media_id = NEW.id",
        "projections_class_insert AFTER INSERT ON projections": "id = NEW.file_id",
        "projections_class_delete AFTER DELETE ON projections": "id = OLD.file_id",
    }
    _run_script(
        db,
        "ALTER TABLE files ADD COLUMN class_side INTEGER;\n"
        + set_side.format(where="media_id IS NOT NULL")
        + "".join(
            f"\nCREATE TRIGGER {head}\nBEGIN\n{set_side.format(where=where)}\nEND;"
            for head, where in triggers.items()
        ),
    )


# m0020: what a Shows or Movies card shows, beside each sort's key (issue 17).
_SHOW_CARD = "title, year, episodes, seasons, poster_id, frame_media_id"
_MOVIE_CARD = "title, year, rating, quality, versions, poster_id, best_media_id"
# The newest/best-first sort keys, negated (one ascending walk and a row-value seek serve them,
# titles still A to Z). Plain columns kept by triggers: SQLite (3.40) never reads an index
# holding a virtual generated column as covering, so m0014's generated keys cost a row each.
_MOVIE_KEYS = """UPDATE movies SET year_key = -coalesce({when}year, 0),
            rating_key = -coalesce({when}rating, -1), quality_key = -{when}quality,
            added_key = -{when}added_at WHERE {where};"""


@migrations()
def m0020_title_grid_indexes(db: Database) -> None:
    """Cover the Shows and Movies grid pages, and index their genre and year filters (issue 17).

    A grid page walks its sort's index from the cursor; each index now also holds every column a
    card reads (as files_by_name does for a folder page), so a deep page reads 60 index entries
    and never the rows, which lie at random in the table. The card's picture was a lookup per
    card through file_meta, files and media (a show's first episode, a film's best version):
    the regrouping keeps it on the row now (frame_media_id, best_media_id); the sort keys are
    plain columns kept by triggers (see _MOVIE_KEYS). shows_by_year lets a
    one-year filter seek its titles in title order. Genres, which lived only in the .nfo's JSON,
    get tables (one row per title and genre, primary key genre first): a genre's titles are one
    index range, and whether a title has a genre one seek.
    """
    _run_script(
        db,
        f"""
        ALTER TABLE shows ADD COLUMN frame_media_id INTEGER;
        ALTER TABLE movies ADD COLUMN best_media_id INTEGER;
        UPDATE shows SET frame_media_id = (SELECT f.media_id FROM file_meta fm
            JOIN files f ON f.id = fm.file_id WHERE fm.show_id = shows.id AND f.present = 1
            ORDER BY fm.season = 0, fm.season, fm.episode, f.name LIMIT 1);
        UPDATE movies SET best_media_id = (SELECT f.media_id FROM file_meta fm
            JOIN files f ON f.id = fm.file_id WHERE fm.movie_id = movies.id AND f.present = 1
            ORDER BY fm.quality DESC, f.id LIMIT 1);
        DROP INDEX shows_by_title;
        CREATE INDEX shows_by_title ON shows (sort_title, id, {_SHOW_CARD}) WHERE episodes > 0;
        CREATE INDEX shows_by_year ON shows (year, sort_title, id, {_SHOW_CARD})
            WHERE episodes > 0;
        DROP INDEX movies_by_title;
        DROP INDEX movies_by_year;
        DROP INDEX movies_by_added;
        DROP INDEX movies_by_rating;
        DROP INDEX movies_by_quality;
        ALTER TABLE movies DROP COLUMN year_key;
        ALTER TABLE movies DROP COLUMN rating_key;
        ALTER TABLE movies DROP COLUMN quality_key;
        ALTER TABLE movies DROP COLUMN added_key;
        ALTER TABLE movies ADD COLUMN year_key INTEGER;
        ALTER TABLE movies ADD COLUMN rating_key REAL;
        ALTER TABLE movies ADD COLUMN quality_key INTEGER;
        ALTER TABLE movies ADD COLUMN added_key REAL;
        {_MOVIE_KEYS.format(when="", where="1")}
        CREATE TRIGGER movies_sort_keys_insert AFTER INSERT ON movies BEGIN
        {_MOVIE_KEYS.format(when="NEW.", where="id = NEW.id")}
        END;
        CREATE TRIGGER movies_sort_keys_update AFTER UPDATE OF year, rating, quality, added_at
            ON movies BEGIN
        {_MOVIE_KEYS.format(when="NEW.", where="id = NEW.id")}
        END;
        CREATE INDEX movies_by_title ON movies (sort_title, id, {_MOVIE_CARD}) WHERE versions > 0;
        CREATE INDEX movies_by_year ON movies (year_key, sort_title, id, {_MOVIE_CARD})
            WHERE versions > 0;
        CREATE INDEX movies_by_added ON movies (added_key, sort_title, id, {_MOVIE_CARD})
            WHERE versions > 0;
        CREATE INDEX movies_by_rating ON movies (rating_key, sort_title, id, {_MOVIE_CARD})
            WHERE versions > 0;
        CREATE INDEX movies_by_quality ON movies (quality_key, sort_title, id, {_MOVIE_CARD})
            WHERE versions > 0;
        CREATE TABLE show_genres (
            genre TEXT NOT NULL COLLATE NOCASE,
            show_id INTEGER NOT NULL REFERENCES shows(id) ON DELETE CASCADE,
            PRIMARY KEY (genre, show_id)
        ) WITHOUT ROWID;
        CREATE INDEX show_genres_show ON show_genres (show_id);
        CREATE TABLE movie_genres (
            genre TEXT NOT NULL COLLATE NOCASE,
            movie_id INTEGER NOT NULL REFERENCES movies(id) ON DELETE CASCADE,
            PRIMARY KEY (genre, movie_id)
        ) WITHOUT ROWID;
        CREATE INDEX movie_genres_movie ON movie_genres (movie_id);
        INSERT OR IGNORE INTO show_genres (genre, show_id)
            SELECT trim(g.value), s.id FROM shows s JOIN nfo n ON n.sidecar_id = s.nfo_id,
            json_each(n.genres) g WHERE g.type = 'text' AND trim(g.value) != '';
        INSERT OR IGNORE INTO movie_genres (genre, movie_id)
            SELECT trim(g.value), mv.id FROM movies mv JOIN nfo n ON n.sidecar_id = mv.nfo_id,
            json_each(n.genres) g WHERE g.type = 'text' AND trim(g.value) != '';
        """,
    )


@migrations()
def m0020b_stream_hdr(db: Database) -> None:
    """Add streams.hdr: the HDR kind a video stream's colour transfer says (issue 17).

    HDR10 (SMPTE ST 2084) or HLG (ARIB STD-B67), from the probe (services/library/probe.py
    hdr_kind); NULL for SDR and for files probed before this (`flask scan --full` reads them
    again). Quality analysis prefers it to the file name's label, which stays for HDR10+ and
    Dolby Vision.
    """
    _run_script(db, "ALTER TABLE streams ADD COLUMN hdr TEXT;")


@migrations()
def m0020c_folder_quality_sort(db: Database) -> None:
    """Sort folder pages and search results by quality (issue 17): files.sort_quality.

    The quality figure services/shows computes per video file (file_meta.quality) is copied onto
    the file by triggers, as m0002 copies the duration (sort_duration), so a folder page walks
    `files_by_quality` (folder, quality, id) from its cursor like the other sorts; pictures and
    files never grouped keep 0.
    """
    _run_script(
        db,
        """
        ALTER TABLE files ADD COLUMN sort_quality INTEGER NOT NULL DEFAULT 0;
        UPDATE files SET sort_quality = fm.quality FROM file_meta fm
            WHERE fm.file_id = files.id AND fm.quality != 0;
        CREATE INDEX files_by_quality ON files (folder_id, sort_quality, id)
            WHERE present = 1 AND media_id IS NOT NULL;
        CREATE TRIGGER file_meta_quality_insert AFTER INSERT ON file_meta BEGIN
            UPDATE files SET sort_quality = NEW.quality WHERE id = NEW.file_id;
        END;
        CREATE TRIGGER file_meta_quality_update AFTER UPDATE OF quality ON file_meta BEGIN
            UPDATE files SET sort_quality = NEW.quality WHERE id = NEW.file_id;
        END;
        CREATE TRIGGER file_meta_quality_delete AFTER DELETE ON file_meta BEGIN
            UPDATE files SET sort_quality = 0 WHERE id = OLD.file_id;
        END;
        """,
    )


# m0020d: a genre's titles in each grid sort, beside the genre (issue 17).
_GENRE_KEYS = {
    "movie": "sort_title, year, year_key, added_key, rating_key, quality_key",
    "show": "sort_title, year",
}


@migrations()
def m0020d_genre_sort_keys(db: Database) -> None:
    """Page a genre's titles by keyset in every sort: the sort keys on the genre rows (issue 17).

    A genre filter walked the sort's index and sought each title's genre (a rare genre passed
    thousands of titles to find 60), or read the genre's titles and sorted them (a common one
    read thousands). With the title's sort keys copied onto its genre rows (written with them by
    the regrouping, services/shows/grouping.py) a genre page seeks `<kind>_genres_by_<sort>`
    (genre, key, title, id, year) from its cursor like any other page; the year is there for a
    year filter besides.
    """
    script = ""
    for kind, cols in _GENRE_KEYS.items():
        names = [c.strip() for c in cols.split(",")]
        types = {"sort_title": "TEXT COLLATE NOCASE", "added_key": "REAL", "rating_key": "REAL"}
        for c in names:
            script += f"ALTER TABLE {kind}_genres ADD COLUMN {c} {types.get(c, 'INTEGER')};\n"
        script += (
            f"UPDATE {kind}_genres SET ({cols}) = (SELECT {cols} FROM {kind}s t "
            f"WHERE t.id = {kind}_genres.{kind}_id);\n"
        )
        script += (
            f"CREATE INDEX {kind}_genres_by_title ON {kind}_genres "
            f"(genre, sort_title, {kind}_id, year);\n"
        )
        for key in names[2:]:
            script += (
                f"CREATE INDEX {kind}_genres_by_{key[:-4]} ON {kind}_genres "
                f"(genre, {key}, sort_title, {kind}_id, year);\n"
            )
    _run_script(db, script)
