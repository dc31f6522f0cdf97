"""The job runner with real worker processes: priorities, cancel, deadlines, start and stop."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from config import load_settings
from services import background
from services import db as dbmod
from services.errors import NotFound
from services.jobs import Jobs
from services.library.scanner import scan, scan_lock
from services.previews.clips import clip_path
from services.previews.sprites import sprite_paths
from services.previews.thumbnails import thumb_path


def settings_for(library_dir: Path, tmp_path: Path, **overrides):
    values = {
        "media_dirs": [str(library_dir)],
        "data_dir": str(tmp_path / "data"),
        "probe_workers": 2,
        "watch": "off",
        **overrides,
    }
    settings = load_settings(values, environ={}, dotenv_path=tmp_path / "no.env")
    dbmod.open_db(settings.data_dir).close()
    return settings


def put(media: dict[str, Path], folder: Path, *keys: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key in keys:
        shutil.copy2(media[key], folder / media[key].name)


def hashes(settings) -> dict[str, str]:
    """Return media_hash by file name."""
    db = dbmod.connect(settings.db_path)
    try:
        rows = db.execute(
            "SELECT f.name, m.media_hash FROM files f JOIN media m ON m.id = f.media_id"
        ).fetchall()
    finally:
        db.close()
    return dict(rows)


def newest_first(settings, names: list[str]) -> list[str]:
    """Return the media_hash of the named files, the most recently indexed first."""
    db = dbmod.connect(settings.db_path)
    try:
        rows = db.execute(
            f"SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id "
            f"WHERE f.name IN ({','.join('?' * len(names))}) ORDER BY m.id DESC",
            names,
        ).fetchall()
    finally:
        db.close()
    return [r[0] for r in rows]


def made_order(settings) -> list[tuple[str, str]]:
    db = dbmod.connect(settings.db_path)
    try:
        return db.execute(
            "SELECT t.kind, f.name FROM thumbs t JOIN files f ON f.media_id = t.media_id "
            "ORDER BY t.made_at"
        ).fetchall()
    finally:
        db.close()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_inline_scan_makes_thumbnails_and_previews_of_new_files(media, library_dir, tmp_path):
    put(media, library_dir, "h264_mp4", "hevc_mkv", "jpeg_exif", "corrupt_mp4")
    settings = settings_for(library_dir, tmp_path, background="inline")
    with Jobs(settings, inline=True) as jobs:
        job = jobs.scan()

        assert job.state == "done" and job.result.new == 4
        by_name = hashes(settings)
        for name in ("h264.mp4", "hevc.mkv", "photo.jpg"):
            assert thumb_path(settings.data_dir, by_name[name]).stat().st_size > 0
        for name in ("h264.mp4", "hevc.mkv"):
            assert all(p.stat().st_size > 0 for p in sprite_paths(settings.data_dir, by_name[name]))
            assert clip_path(settings.data_dir, by_name[name]).stat().st_size > 0
        assert not clip_path(settings.data_dir, by_name["photo.jpg"]).exists()
        status = jobs.status()
        assert status.done == {"scan": 1, "thumbnail": 3, "sprite": 2, "clip": 2}
        assert status.missing == {"thumbnail": 0, "sprite": 0, "clip": 0} and status.queued == {}

        assert jobs.thumbnail(by_name["h264.mp4"], wait=0) == thumb_path(
            settings.data_dir, by_name["h264.mp4"]
        )
        assert jobs.sprite(by_name["photo.jpg"], wait=1) is None  # pictures have no preview
        started = time.monotonic()
        assert jobs.thumbnail(by_name["corrupt.mp4"], wait=5) is None  # its probe failed
        assert time.monotonic() - started < 1
        for unknown in ("ffffffffffffffff", "../../etc/passwd", "ABCDEF0123456789"):
            with pytest.raises(NotFound):
                jobs.thumbnail(unknown, wait=1)


def test_visible_first_then_new_files_then_the_backlog(media, library_dir, tmp_path):
    put(media, library_dir / "old", "h264_mp4", "hevc_mkv")
    settings = settings_for(library_dir, tmp_path)
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)  # indexed before the runner starts: backlog
    db.close()
    with Jobs(settings, workers=1, paused=True) as jobs:
        put(media, library_dir / "new", "vp9_webm", "mpeg4_avi")
        assert jobs.scan().wait(60)  # scans run while thumbnails are paused
        wait_for(lambda: jobs.status().queued == {"thumbnail": 4, "sprite": 4, "clip": 4})
        by_name = hashes(settings)

        # On screen: made at once although everything else is paused.
        assert jobs.thumbnail(by_name["hevc.mkv"], wait=30) is not None
        assert made_order(settings) == [("thumbnail", "hevc.mkv")]
        upcoming = [(j.kind, j.target, j.priority) for j in jobs.status().upcoming]
        new = newest_first(settings, ["vp9.webm", "mpeg4.avi"])
        old = newest_first(settings, ["h264.mp4", "hevc.mkv"])
        assert upcoming == [
            *[("thumbnail", h, "new") for h in new],
            *[("sprite", h, "new") for h in new],
            ("thumbnail", by_name["h264.mp4"], "backlog"),  # hevc.mkv's is made already
            *[("sprite", h, "backlog") for h in old],
            # Preview clips after every thumbnail and sprite, new files' first.
            *[("clip", h, "new") for h in new],
            ("clip", old[0], "backlog"),  # the tenth: upcoming lists ten
        ]

        jobs.resume()
        wait_for(lambda: len(made_order(settings)) == 12)

    name_of = {h: n for n, h in by_name.items()}
    expected = [("thumbnail", "hevc.mkv")] + [(k, name_of[h]) for k, h, _ in upcoming]
    assert made_order(settings) == [*expected, ("clip", name_of[old[1]])]


def test_cancel_a_queued_job_and_a_scan_waiting_for_the_lock(media, library_dir, tmp_path):
    put(media, library_dir, "h264_mp4", "hevc_mkv")
    settings = settings_for(library_dir, tmp_path, preview_clips="off")
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    db.close()
    with Jobs(settings, workers=1, paused=True) as jobs:
        wait_for(lambda: len(jobs.status().upcoming) == 4)
        first = jobs.status().upcoming[0]
        assert jobs.cancel(first.id)
        assert not jobs.cancel(first.id)  # already gone
        with scan_lock(settings.data_dir):  # a `flask scan` in another process
            running = jobs.scan()
            wait_for(lambda: running.phase == "waiting for another scan")
            queued = jobs.scan([library_dir])
            assert jobs.scan([library_dir / "sub"]) is queued  # joins the waiting one
            assert jobs.cancel(queued.id) and queued.wait(1) and queued.state == "cancelled"
            assert jobs.cancel(running.id) and running.wait(10)
        assert running.state == "cancelled"
        jobs.resume()
        wait_for(lambda: len(made_order(settings)) == 3)
        time.sleep(0.3)  # time enough for a fourth, if the cancelled job were run after all
        by_name = hashes(settings)
        made = [(kind, by_name[name]) for kind, name in made_order(settings)]
        assert len(made) == 3 and (first.kind, first.target) not in made


@pytest.mark.timeout(60)
def test_a_hanging_render_is_killed_on_its_deadline_and_not_retried(media, library_dir, tmp_path):
    put(media, library_dir, "h264_mp4", "hevc_mkv")
    settings = settings_for(library_dir, tmp_path, thumbnail_timeout=1)
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    db.close()
    by_name = hashes(settings)
    with Jobs(settings, workers=1, feed=False) as jobs:
        assert jobs.thumbnail(by_name["h264.mp4"], wait=30) is not None  # warms the worker
        [stuck] = jobs.worker_pids()
        # A stopped worker makes no progress, like one decoding a file that loops forever.
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()

        assert jobs.thumbnail(by_name["hevc.mkv"], wait=30) is None

        assert 1 <= time.monotonic() - started < 5
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)
        status = jobs.status()
        assert status.failed == {"thumbnail": 1}
        assert status.errors[-1][1:] == (
            "thumbnail",
            by_name["hevc.mkv"],
            "thumbnail timed out after 1 s",
        )
        # Recorded: a page asking again gets the placeholder at once, no new attempt.
        started = time.monotonic()
        assert jobs.thumbnail(by_name["hevc.mkv"], wait=30) is None
        assert time.monotonic() - started < 0.5 and jobs.status().failed == {"thumbnail": 1}
    leftovers = [p for p in (settings.data_dir / "thumbs").rglob("*") if p.is_file()]
    assert [p.name for p in leftovers] == [f"{by_name['h264.mp4']}.jpg"]


def test_two_requests_for_one_thumbnail_make_it_once(media, library_dir, tmp_path):
    put(media, library_dir, "hevc_mkv")
    settings = settings_for(library_dir, tmp_path)
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    db.close()
    [media_hash] = hashes(settings).values()
    with Jobs(settings, workers=2, feed=False) as jobs:
        start = threading.Barrier(3)
        got: list[Path | None] = []

        def ask() -> None:
            start.wait()
            got.append(jobs.thumbnail(media_hash, wait=30))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        assert got == [thumb_path(settings.data_dir, media_hash)] * 3
        assert jobs.status().done == {"thumbnail": 1}


def test_close_stops_threads_and_worker_processes(media, library_dir, tmp_path):
    put(media, library_dir, "h264_mp4", "hevc_mkv", "vp9_webm")
    settings = settings_for(library_dir, tmp_path)
    jobs = Jobs(settings)
    jobs.scan()
    wait_for(lambda: jobs.worker_pids())
    pids = jobs.worker_pids()
    started = time.monotonic()

    jobs.close()

    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("lvs-job")]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_background_starts_in_one_process_only(library_dir, tmp_path):
    settings = settings_for(library_dir, tmp_path)
    first = background.start(settings)
    second = background.start(settings)  # another gunicorn worker: the lock is taken
    try:
        assert first.owner and not second.owner
        assert first.jobs is not None and second.jobs is not None
    finally:
        second.stop()
        first.stop()
    third = background.start(settings)  # the owner stopped: its lock is free again
    try:
        assert third.owner
    finally:
        third.stop()
    off = background.start(settings_for(library_dir, tmp_path, background="off"))
    assert off.jobs is None and not off.owner
    inline = background.start(settings_for(library_dir, tmp_path, background="inline"))
    assert inline.jobs is not None and inline.jobs.inline
    inline.stop()
