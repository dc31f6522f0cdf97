"""services.db.WalWatch maps the database's -shm read-only and must leave SQLite's hold on it.

SQLite's "this database is open" is a POSIX read lock on the -shm's DMS byte, and closing any
descriptor of a file drops every POSIX lock the process holds on it. A watch that closed the
descriptor it mapped through left its process holding nothing: the next process to open the
database (a respawned gunicorn worker, a `flask worker`) found itself the first, truncated the
-shm, and every process reading a mapping of it died of SIGBUS (bench b18's concurrency row:
"Worker (pid:N) was sent SIGBUS!" two or three times a run). Real SQLite, real processes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from services import db as dbmod

DMS_BYTE = 128  # the -shm's "database open" lock: WALINDEX_LOCK_OFFSET 120 + 8 (os_unix.c)
TAKE_DMS = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        print("held")
    else:
        print("free")
    """
)
READER = textwrap.dedent(
    """
    import faulthandler, sqlite3, sys, threading
    faulthandler.enable(all_threads=True)
    from services import db as dbmod
    conn = sqlite3.connect(sys.argv[1])
    conn.execute("SELECT count(*) FROM t").fetchone()
    watch = dbmod.WalWatch(sys.argv[1])
    first = watch.stamp()
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print("ready", flush=True)
    changed = False
    while not done.is_set():  # both mappings of the -shm, the watch's and SQLite's own
        changed |= watch.stamp() != first
        conn.execute("SELECT count(*) FROM t").fetchone()
    print("changed" if changed else "unchanged", flush=True)
    """
)
OPENER = "import sqlite3; c = sqlite3.connect({path!r}); c.execute('INSERT INTO t VALUES ({n})'); c.commit()"
OPENERS = 20


def _database(tmp_path: Path) -> str:
    path = str(tmp_path / "library.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return path


def _dms(path: str) -> str:
    run = subprocess.run([sys.executable, "-c", TAKE_DMS, path + "-shm"], capture_output=True)
    return run.stdout.decode().strip()


def test_a_watching_process_still_holds_the_database_open(tmp_path: Path) -> None:
    path = _database(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("SELECT count(*) FROM t").fetchone()
    assert _dms(path) == "held"  # SQLite's own hold, before any watch
    dbmod.WalWatch(path)  # let go of at once: its mapping's copy of the descriptor stays open
    assert _dms(path) == "held"  # dropped by the watch's close, another process could truncate
    conn.close()


def test_a_retired_watch_closes_its_mapping_only_once_sqlite_has_let_go(tmp_path: Path) -> None:
    path = _database(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("SELECT count(*) FROM t").fetchone()
    watch = dbmod.WalWatch(path)
    before = watch.stamp()
    watch.retire()  # as _watch does past WATCHES databases, while `conn` is still in use
    assert _dms(path) == "held"
    assert watch.stamp() == before and watch in dbmod._alive
    conn.close()  # nothing in this process has the database open now
    other = tmp_path / "other"
    other.mkdir()
    dbmod.WalWatch(_database(other)).retire()  # the next retirement closes both
    assert watch not in dbmod._alive
    assert watch.stamp() != watch.stamp()  # a memo still holding it empties every time


def test_a_process_opening_the_database_kills_no_watching_reader(tmp_path: Path) -> None:
    path = _database(tmp_path)
    root = str(Path(__file__).resolve().parent.parent)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, path],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline() == "ready\n", reader.communicate()[1]
        for n in range(OPENERS):  # fresh processes, as a respawned worker or a `flask worker`
            subprocess.run([sys.executable, "-c", OPENER.format(path=path, n=n)], check=True)
            if reader.poll() is not None:  # before the fix: killed by the 1st to 3rd opener
                break
        out, err = reader.communicate("", timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    assert out == "changed\n"  # and the watch saw the others' commits
