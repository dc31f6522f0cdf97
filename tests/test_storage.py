"""The database, the media_hash and the filesystem helpers, without Flask."""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import time

import pytest

from services import db as dbmod
from services import fsutil
from services.errors import StorageError
from services.library.identity import oshash

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/nas rw,relatime - nfs4 nas:/export rw,vers=4.2
41 27 0:51 / /mnt/win\\040share rw,relatime - cifs //pc/share rw
42 27 0:52 / /mnt/nas/local rw,relatime - ext4 /dev/vdb rw
"""


def reference_oshash(path) -> str:
    """The OpenSubtitles algorithm as published, for files of at least 64 KiB."""
    size = os.path.getsize(path)
    value = size
    with open(path, "rb") as f:
        for offset in (0, size - 65536):
            f.seek(offset)
            for _ in range(65536 // 8):
                value = (value + struct.unpack("<Q", f.read(8))[0]) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


@pytest.mark.parametrize("size", [65536, 65537, 200_000, 3_000_001])
def test_oshash_matches_the_published_algorithm(tmp_path, size):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    h, st = oshash(path)
    assert h == reference_oshash(path)
    assert len(h) == 16 and st.st_size == size


def test_oshash_small_files_are_defined_and_distinct(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"hello")
    b.write_bytes(b"hellp")
    assert oshash(a)[0] != oshash(b)[0]
    assert oshash(a)[0] == oshash(a)[0]


def test_oshash_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        oshash(fifo)


def test_mount_table_and_network_detection(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    mounts = fsutil.read_mounts(info)
    assert fsutil.mount_of(__import__("pathlib").Path("/mnt/nas/movies"), mounts).fstype == "nfs4"
    assert fsutil.is_network_path("/mnt/win share/x", mounts)
    assert not fsutil.is_network_path("/mnt/nas/local/db", mounts)
    assert not fsutil.is_network_path("/home/user", mounts)
    with pytest.raises(StorageError, match=r"LVS_DATA_DIR: /mnt/nas/data is on a network .*nfs4"):
        dbmod.check_local_disk(__import__("pathlib").Path("/mnt/nas/data"), mounts)


def test_retry_estale_backs_off_then_succeeds():
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OSError(errno.ESTALE, "Stale file handle")
        return "ok"

    assert fsutil.retry_estale(flaky) == "ok"
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095


def test_retry_estale_gives_up_and_passes_other_errors_at_once():
    calls = []

    def stale():
        calls.append(1)
        raise OSError(errno.ESTALE, "Stale file handle")

    with pytest.raises(OSError) as err:
        fsutil.retry_estale(stale)
    assert err.value.errno == errno.ESTALE and len(calls) == 4
    calls.clear()

    def missing():
        calls.append(1)
        raise FileNotFoundError(errno.ENOENT, "gone")

    with pytest.raises(FileNotFoundError):
        fsutil.retry_estale(missing)
    assert len(calls) == 1


def test_database_pragmas_and_migrations(tmp_path):
    db = dbmod.open_db(tmp_path / "data")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == dbmod.BUSY_TIMEOUT_MS
    tables = set(db.table_names())
    assert {"libraries", "folders", "media", "streams", "files", "parses", "probe_errors"} <= tables
    applied = [m.name for m in dbmod.migrations.applied(db)]
    db.close()
    again = dbmod.open_db(tmp_path / "data")  # idempotent
    assert [m.name for m in dbmod.migrations.applied(again)] == applied


def test_write_rolls_back_on_error(tmp_path):
    db = dbmod.open_db(tmp_path)
    with pytest.raises(RuntimeError):
        with dbmod.write(db):
            db.execute("INSERT INTO libraries (root, name, added_at) VALUES ('/x', 'x', 0)")
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM libraries").fetchone()[0] == 0


def test_two_writers_wait_instead_of_failing(tmp_path):
    """BEGIN IMMEDIATE + busy timeout: a second writer waits for the first, no 'database is locked'."""
    first = dbmod.open_db(tmp_path)
    import threading

    done = []

    def other():
        second = dbmod.connect(tmp_path / "library.db")
        with dbmod.write(second):
            second.execute("INSERT INTO libraries (root, name, added_at) VALUES ('/b', 'b', 0)")
        done.append(True)

    with dbmod.write(first):
        first.execute("INSERT INTO libraries (root, name, added_at) VALUES ('/a', 'a', 0)")
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)
        assert not done  # waiting on the lock, not failed
    thread.join(5)
    assert done and first.execute("SELECT count(*) FROM libraries").fetchone()[0] == 2


def test_foreign_keys_are_enforced(tmp_path):
    db = dbmod.open_db(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO streams (media_id, idx, type) VALUES (999, 0, 'video')")


def _open_fresh(args: tuple[str, float]) -> str:
    from pathlib import Path

    data_dir, start = args
    time.sleep(max(0.0, start - time.time()))  # all at once, as gunicorn's workers boot
    try:
        dbmod.open_db(Path(data_dir)).close()
    except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_workers_starting_together_migrate_once(tmp_path):
    """gunicorn starts its workers at the same moment on a fresh data dir: none may fail."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        start = time.time() + 1.5
        results = pool.map(_open_fresh, [(str(tmp_path / "data"), start)] * 4)
    assert results == ["ok"] * 4
    db = dbmod.open_db(tmp_path / "data")
    names = [m.name for m in dbmod.migrations.applied(db)]
    assert len(names) == len(set(names))
