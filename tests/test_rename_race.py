"""Files renamed while a full scan runs, the watcher on: none is left failed (issue 20, item 1).

A file that vanishes between the walk and the hash or the probe has been moved (or deleted); that
says nothing about its content, so it must never be recorded as a failure. Here a real
`flask scan --full` runs while files are renamed under it, and a real watcher (inotify) queues
the scans that follow, as the server's background owner does. Once the watcher's scans are
done, every file is indexed at its new name, probed ok, and nothing is failed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from app import create_app
from services import db as dbmod
from services.jobs import Jobs
from services.library import library
from services.library.scanner import scan
from services.library.watcher import Watcher
from tests.test_watcher import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

FOLDERS, PER_FOLDER = 3, 80


def test_renames_racing_a_full_scan_leave_nothing_failed(media, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    clip = media["h264_mp4"].read_bytes()
    names = []
    for k in range(FOLDERS):
        (lib / f"f{k}").mkdir(parents=True)
        for i in range(PER_FOLDER):
            name = f"f{k}/clip {i:03d}.mp4"
            (lib / name).write_bytes(clip + f"#{k}-{i}".encode())  # its own content, still a video
            names.append(name)
    app = create_app(
        {
            "media_dirs": [str(lib)],
            "data_dir": str(tmp_path / "data"),
            "watch": "events",
            "watch_debounce": 0.3,
            "watch_settle": 0.15,
            "probe_workers": 2,
        }
    )
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    assert scan(db, settings).failed == 0
    jobs = Jobs(settings, feed=False, workers=1)
    watcher = Watcher(settings, lambda folders: jobs.scan(folders))
    watcher.start()
    assert watcher.wait_started(), watcher.status()
    result = {}

    def full_scan() -> None:
        result["out"] = app.test_cli_runner().invoke(args=["scan", "--full", "--no-thumbnails"])

    renamed = []
    try:
        scanning = threading.Thread(target=full_scan)
        scanning.start()
        for i, name in enumerate(names):
            if not scanning.is_alive():
                break
            # Within its folder and into the next one, while the scan hashes and probes.
            folder = name.split("/")[0] if i % 2 else f"f{(int(name[1]) + 1) % FOLDERS}"
            new = f"{folder}/renamed {i:03d}.mp4"
            os.rename(lib / name, lib / new)
            renamed.append(new)
            time.sleep(0.004)
        scanning.join()
        assert result["out"].exit_code == 0, result["out"].output
        assert len(renamed) >= 20, "the scan was over before the renames began"

        on_disk = {
            os.path.relpath(os.path.join(d, f), lib) for d, _, fs in os.walk(lib) for f in fs
        }

        def settled() -> bool:
            present = db.execute("SELECT path FROM files WHERE present = 1").fetchall()
            pending = db.execute(
                "SELECT count(*) FROM media WHERE probe_status = 'pending'"
            ).fetchone()[0]
            st = jobs.status()
            busy = st.queued.get("scan", 0) or any(j.kind == "scan" for j in st.running)
            return {os.fsdecode(p) for (p,) in present} == on_disk and not pending and not busy

        wait_for(settled, 60, "the watcher's scans to catch up")
    finally:
        watcher.stop()
        jobs.close()
    failures = db.execute(
        "SELECT f.path, e.reason FROM probe_errors e JOIN files f ON f.id = e.file_id"
    ).fetchall()
    assert failures == []
    statuses = dict(db.execute("SELECT probe_status, count(*) FROM media GROUP BY 1").fetchall())
    assert statuses == {"ok": FOLDERS * PER_FOLDER}
    assert library.stats(db).failed == 0
    # Each renamed file kept its row (a move), so whatever was attached to it followed.
    assert db.execute("SELECT count(*) FROM files").fetchone()[0] == FOLDERS * PER_FOLDER
    db.close()
    shutil.rmtree(lib)


def test_failures_recorded_for_moved_files_are_forgotten_and_probed_again(media, tmp_path) -> None:
    """A database where the old scanner recorded a moved file as failed heals on upgrade."""
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(media["h264_mp4"], lib / "moved.mp4")
    shutil.copy2(media["mpeg4_avi"], lib / "broken.avi")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data")})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    rows = dict(db.execute("SELECT name, id FROM files").fetchall())
    with dbmod.write(db):  # what the old scanner left behind, and a real content failure
        for name, reason in (
            ("moved.mp4", "cannot read: No such file or directory"),
            ("broken.avi", "not a media file"),
        ):
            db.execute(
                "UPDATE media SET probe_status = 'failed' WHERE id = "
                "(SELECT media_id FROM files WHERE id = ?)",
                [rows[name]],
            )
            db.execute(
                "INSERT INTO probe_errors (file_id, reason, size, mtime_ns, failed_at) "
                "SELECT id, ?, size, mtime_ns, 0 FROM files WHERE id = ?",
                [reason, rows[name]],
            )
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm0009_forget_vanished_failures'")
    db.close()
    db = dbmod.open_db(settings.data_dir)  # the upgrade
    assert [r[0] for r in db.execute("SELECT reason FROM probe_errors")] == ["not a media file"]
    scan(db, settings)  # nothing changed on disk: the forgotten one is probed all the same
    status = dict(
        db.execute(
            "SELECT f.name, m.probe_status FROM files f JOIN media m ON m.id = f.media_id"
        ).fetchall()
    )
    assert status == {"moved.mp4": "ok", "broken.avi": "failed"}
    db.close()


def _fail(db, name: str, reason: str) -> None:
    """Record a failure for the file named `name` as a probe would (media failed, error kept)."""
    with dbmod.write(db):
        db.execute(
            "UPDATE media SET probe_status = 'failed' WHERE id = "
            "(SELECT media_id FROM files WHERE name = ?)",
            [name],
        )
        db.execute(
            "INSERT OR REPLACE INTO probe_errors (file_id, reason, size, mtime_ns, failed_at) "
            "SELECT id, ?, size, mtime_ns, 0 FROM files WHERE name = ?",
            [reason, name],
        )


def test_the_same_content_found_healthy_elsewhere_clears_its_failure(media, tmp_path) -> None:
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    (lib / "b").mkdir()
    shutil.copy2(media["h264_mp4"], lib / "a" / "clip.mp4")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data")})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    # A probe that timed out while the machine was busy: its content is recorded as failed.
    _fail(db, "clip.mp4", "probe timed out after 30 s")
    assert library.stats(db).failed == 1
    shutil.copy2(lib / "a" / "clip.mp4", lib / "b" / "copy.mp4")
    scan(db, settings, paths=[lib / "b"])  # the same content, found at another path
    assert db.execute("SELECT probe_status FROM media").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 0
    assert library.stats(db).failed == 0
    # Moved, likewise: the failure went with the row, one more probe where it is now clears it.
    _fail(db, "copy.mp4", "probe crashed")
    os.rename(lib / "b" / "copy.mp4", lib / "b" / "moved.mp4")
    report = scan(db, settings, paths=[lib / "b"])
    assert report.moved == 1
    assert db.execute("SELECT probe_status FROM media").fetchone()[0] == "ok"
    assert library.stats(db).failed == 0
    db.close()
