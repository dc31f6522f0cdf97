"""Live sync: a real watcher on real temp folders, its callback running the real scanner.

Every test changes files on disk, then waits (polling with a timeout) until the database matches
the disk, as a user would see it. Debounce and settle times are shortened to keep the suite fast.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config import load_settings
from services import db as dbmod
from services.fsutil import Mount
from services.library import settle, watch_events
from services.library.probe_pool import ProbePool
from services.library.scanner import ScanReport, scan
from services.library.walker import is_skipped_folder, kind_of
from services.library.watcher import Watcher

# watchdog warns when it re-adds a watch it holds (a folder moved inside the tree); production
# silences it in services/library/watch_events.py, pytest resets warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

FAST = {"watch_debounce": 0.3, "watch_settle": 0.15, "watch_poll_interval": 0.5}


def wait_for(check: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `check` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Live:
    """A watcher whose on_dirty runs a scoped scan on the test's database, recording each call."""

    def __init__(self, settings, mounts: list[Mount] | None = None) -> None:
        self.settings = settings
        self.root = settings.media_dirs[0]
        self.db = dbmod.open_db(settings.data_dir)
        self.pool = ProbePool(2, 30.0)
        self.calls: list[tuple[float, list[Path], ScanReport]] = []
        self.watcher = Watcher(settings, self._on_dirty, mounts=mounts)

    def _on_dirty(self, folders: list[Path]) -> None:
        db = dbmod.connect(self.settings.db_path)  # the dispatcher's thread has its own
        try:
            report = scan(db, self.settings, paths=folders, probe_pool=self.pool)
        finally:
            db.close()
        self.calls.append((time.monotonic(), folders, report))

    def start(self) -> Live:
        scan(self.db, self.settings, probe_pool=self.pool)
        self.watcher.start()
        assert self.watcher.wait_started(), self.watcher.status()
        return self

    def close(self) -> None:
        self.watcher.stop()
        self.pool.close()
        self.db.close()

    @property
    def status(self):  # type: ignore[no-untyped-def]
        return self.watcher.status()[0]

    def on_disk(self) -> set[str]:
        found = set()
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not is_skipped_folder(os.fsencode(d))]
            for name in files:
                if kind_of(name):
                    found.add(os.path.relpath(os.path.join(folder, name), self.root))
        return found

    def in_db(self) -> set[str]:
        rows = self.db.execute("SELECT path FROM files WHERE present = 1").fetchall()
        return {os.fsdecode(r[0]) for r in rows}

    def pending(self) -> int:
        return self.db.execute(
            "SELECT count(*) FROM media m JOIN files f ON f.media_id = m.id "
            "WHERE f.present = 1 AND m.probe_status = 'pending'"
        ).fetchone()[0]

    def wait_match(self, timeout: float = 30.0) -> None:
        """Wait until the present files are the media files on disk, all of them probed."""

        def matches() -> bool:
            return self.on_disk() == self.in_db() and not self.pending()

        try:
            wait_for(matches, timeout, "the database to match")
        except AssertionError:
            disk, db = self.on_disk(), self.in_db()
            raise AssertionError(
                f"disk only: {sorted(disk - db)[:5]}, db only: {sorted(db - disk)[:5]}, "
                f"calls: {[c[1] for c in self.calls][-5:]}, status: {self.status}"
            ) from None

    def row(self, rel: str) -> tuple | None:
        return self.db.execute(
            "SELECT f.id, f.media_id, m.probe_status, m.duration, m.media_hash FROM files f "
            "JOIN media m ON m.id = f.media_id WHERE f.path = ? AND f.present = 1",
            [os.fsencode(rel)],
        ).fetchone()

    def scanned_paths(self) -> list[Path]:
        return [p for _, folders, _ in self.calls for p in folders]


@pytest.fixture
def live(tmp_path: Path, library_dir: Path) -> Iterator[Callable[..., Live]]:
    """Return a factory of started Live watchers over `library_dir`, stopped after the test."""
    made: list[Live] = []

    def make(mounts: list[Mount] | None = None, **overrides: object) -> Live:
        values = {
            "media_dirs": [str(library_dir)],
            "data_dir": str(tmp_path / "data"),
            "probe_workers": 2,
            **FAST,
            **overrides,
        }
        settings = load_settings(values, environ={}, dotenv_path=tmp_path / "no.env")
        made.append(Live(settings, mounts))
        return made[-1].start()

    yield make
    for item in made:
        item.close()


def test_create_modify_rename_move_out_delete(live, media, library_dir: Path, tmp_path: Path):
    w = live(watch="events")
    assert w.status.mode == "events"
    (library_dir / "a").mkdir()
    shutil.copyfile(media["h264_mp4"], library_dir / "a" / "clip.mp4")
    w.wait_match()
    first = w.row("a/clip.mp4")
    assert first is not None and first[2] == "ok" and first[3] == pytest.approx(2, abs=0.2)
    # One new file costs a scan of its folder, never of the whole library.
    assert library_dir not in w.scanned_paths()

    shutil.copyfile(media["hevc_mkv"], library_dir / "a" / "clip.mp4")  # new content, same name
    wait_for(lambda: (w.row("a/clip.mp4") or first)[4] != first[4], what="the new content")
    w.wait_match()
    modified = w.row("a/clip.mp4")
    assert modified[2] == "ok"

    os.rename(library_dir / "a" / "clip.mp4", library_dir / "a" / "renamed.mp4")
    w.wait_match()
    renamed = w.row("a/renamed.mp4")
    assert renamed[:2] == modified[:2]  # the same file row and media row: user data follows

    (library_dir / "b").mkdir()
    os.rename(library_dir / "a", library_dir / "b" / "a")  # a folder moved inside the library
    w.wait_match()
    assert w.row("b/a/renamed.mp4")[:2] == modified[:2]

    shutil.move(library_dir / "b" / "a" / "renamed.mp4", tmp_path / "outside.mp4")
    w.wait_match()
    gone = w.db.execute("SELECT present FROM files WHERE id = ?", [modified[0]]).fetchone()
    assert gone == (0,)

    shutil.copyfile(media["vp9_webm"], library_dir / "b" / "short-lived.webm")
    w.wait_match()
    (library_dir / "b" / "short-lived.webm").unlink()
    w.wait_match()
    assert w.in_db() == set()
    assert library_dir not in w.scanned_paths()


def test_file_written_in_chunks_is_probed_once_after_it_settles(live, media, library_dir: Path):
    w = live(watch="events")
    data = media["h264_mp4"].read_bytes()
    target = library_dir / "slow.mp4"
    pieces = 4
    with open(target, "wb") as out:  # a copy that pauses longer than the debounce
        for i in range(pieces):
            out.write(data[i * len(data) // pieces : (i + 1) * len(data) // pieces])
            out.flush()
            time.sleep(0.5)
        last_write = time.monotonic()
    w.wait_match()
    time.sleep(1.0)  # room for a late second call
    assert len(w.calls) == 1, w.calls
    called_at, folders, report = w.calls[0]
    assert called_at >= last_write
    assert folders == [library_dir]  # the file's folder, which here is the root
    assert (report.new, report.probed, report.failed) == (1, 1, 0)
    assert w.row("slow.mp4")[2:4] == ("ok", pytest.approx(2, abs=0.2))


def test_polling_settles_a_growing_file_and_finds_every_change(live, media, library_dir: Path):
    # Settle 1.2 s against 0.4 s pauses: a writer stalled 0.8 s by a loaded machine still
    # counts as one copy.
    w = live(watch="poll", watch_poll_interval=0.3, watch_settle=1.2)
    assert (w.status.mode, w.status.reason) == ("poll", "LVS_WATCH=poll")
    assert w.watcher._roots[0]._observer is None  # no inotify at all
    data = media["h264_mp4"].read_bytes()
    (library_dir / "p").mkdir()
    with open(library_dir / "p" / "growing.mp4", "wb") as out:
        for i in range(4):  # pauses shorter than the settle time, longer than a poll
            out.write(data[i * len(data) // 4 : (i + 1) * len(data) // 4])
            out.flush()
            time.sleep(0.4)
        last_write = time.monotonic()
    w.wait_match()
    assert [c[2].probed for c in w.calls] == [1] and w.calls[0][0] >= last_write
    assert w.row("p/growing.mp4")[2] == "ok"

    os.rename(library_dir / "p" / "growing.mp4", library_dir / "p" / "grown.mp4")
    shutil.copyfile(media["mpeg4_avi"], library_dir / "new.avi")
    w.wait_match()
    shutil.rmtree(library_dir / "p")
    w.wait_match()
    assert w.in_db() == {"new.avi"}


def test_network_mount_is_polled_and_says_why(live, media, library_dir: Path, caplog):
    caplog.set_level(logging.INFO, logger="services.library.watcher")
    w = live(mounts=[Mount("/", "ext4"), Mount(str(library_dir), "nfs4")], watch="auto")
    assert w.status.mode == "poll" and "nfs4" in w.status.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(library_dir) in warnings[0].getMessage() and "nfs4" in warnings[0].getMessage()
    shutil.copyfile(media["h264_mp4"], library_dir / "over-nfs.mp4")
    w.wait_match()


def test_a_root_that_cannot_be_watched_falls_back_to_polling(
    live, media, library_dir: Path, caplog, monkeypatch
):
    # The inotify watch limit is a per-user kernel setting shared with everything else running
    # here; it is not exhausted for real. The failure is the one inotify_add_watch raises.
    def refuse(*args: object) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watch_events, "start_observer", refuse)
    caplog.set_level(logging.WARNING, logger="services.library.watcher")
    w = live(watch="auto")
    assert w.status.mode == "poll" and "watch limit" in w.status.reason
    assert any(str(library_dir) in r.getMessage() for r in caplog.records)
    shutil.copyfile(media["h264_mp4"], library_dir / "found-by-polling.mp4")
    w.wait_match()


def test_ignored_changes_cause_no_scan(live, media, library_dir: Path, tmp_path: Path):
    data_dir = library_dir / "appdata"  # our own data dir inside the library
    w = live(watch="events", data_dir=str(data_dir))
    assert w.status.mode == "events"
    clip = media["h264_mp4"]
    for rel in (".hidden.mp4", "notes.txt", "@eaDir/thumb.mp4", ".sync/part.mp4"):
        (library_dir / rel).parent.mkdir(exist_ok=True)
        shutil.copyfile(clip, library_dir / rel)
    (data_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, data_dir / "thumbs" / "x.mp4")
    (data_dir / "thumbs" / "x.jpg").write_bytes(b"jpeg")
    time.sleep(1.5)
    assert w.calls == []
    shutil.copyfile(clip, library_dir / "real.mp4")
    wait_for(lambda: w.calls, what="a scan")
    assert [c[1] for c in w.calls] == [[library_dir]]
    assert "real.mp4" in w.in_db() and not any("appdata" in p for p in w.in_db())


def test_storm_of_files_ends_matching_the_disk(live, library_dir: Path, tmp_path: Path):
    # Distinct small files that are not really videos: each is hashed and fails its probe in a
    # millisecond, so the test measures the watcher, not 2,000 probes. (Copies of one clip would
    # measure the scanner's duplicate handling instead.)
    w = live(watch="events")
    for f in range(20):  # 2,000 files in 20 new folders, as fast as the disk takes them
        folder = library_dir / "storm" / f"f{f:02}"
        folder.mkdir(parents=True)
        for i in range(100):
            (folder / f"{i:03}.mp4").write_bytes(b"storm %d %d\n" % (f, i))
    w.wait_match(timeout=90)
    assert len(w.in_db()) == 2000
    assert all(len(folders) <= settle.MAX_PATHS for _, folders, _ in w.calls)
    assert len(w.calls) <= 5  # a burst costs a scan or two, not one per file or folder

    outside = tmp_path / "incoming"
    outside.mkdir()
    for i in range(1000):
        (outside / f"in{i:04}.mp4").write_bytes(b"incoming %d\n" % i)
    shutil.move(library_dir / "storm" / "f00", tmp_path / "moved-out")
    shutil.move(outside, library_dir / "storm" / "incoming")  # thousands moved in at once
    w.wait_match(timeout=90)
    assert len(w.in_db()) == 2900
    assert w.status.pending == 0


def test_lost_events_rescan_the_root(live, library_dir: Path, media, caplog):
    """A real inotify queue overflow: the events are gone, so the root is scanned."""
    caplog.set_level(logging.WARNING, logger="services.library.watcher")
    (library_dir / "many").mkdir()
    (library_dir / "quiet").mkdir()
    w = live(watch="events")
    queue_max = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    inotify = w.watcher._roots[0]._observer._inotify_fd
    with inotify._lock:  # the reader stalls while the kernel queue fills and overflows
        for i in range(queue_max // 2 + 4096):
            (library_dir / "many" / f"{i}.txt").touch()  # create + close: two events each
        os.link(media["h264_mp4"], library_dir / "quiet" / "lost.mp4")  # its event is dropped
    w.wait_match()
    assert "quiet/lost.mp4" in w.in_db()
    assert library_dir in w.scanned_paths()
    assert any("events were lost" in r.getMessage() for r in caplog.records)


def test_root_that_goes_offline_keeps_its_files_and_is_watched_again(
    live, media, library_dir: Path, tmp_path: Path
):
    shutil.copyfile(media["h264_mp4"], library_dir / "kept.mp4")
    w = live(watch="events")
    assert w.in_db() == {"kept.mp4"}
    library_dir.rename(tmp_path / "unplugged")
    wait_for(lambda: w.status.mode == "offline", what="the root to go offline")
    assert "does not exist" in w.status.reason
    time.sleep(1.0)
    assert w.in_db() == {"kept.mp4"}  # nothing marked missing while it is away
    assert w.calls == []

    (tmp_path / "unplugged" / "added-while-away.mp4").write_bytes(media["h264_mkv"].read_bytes())
    (tmp_path / "unplugged").rename(library_dir)
    wait_for(lambda: w.status.mode == "events", what="the root to be watched again")
    w.wait_match()
    assert w.in_db() == {"kept.mp4", "added-while-away.mp4"}

    shutil.rmtree(library_dir)  # removed for good, then re-created with other content
    library_dir.mkdir()
    (library_dir / "fresh").mkdir()
    shutil.copyfile(media["vp9_webm"], library_dir / "fresh" / "new.webm")
    w.wait_match()
    wait_for(lambda: w.status.mode == "events", what="the new root to be watched")
    shutil.copyfile(media["mpeg4_avi"], library_dir / "fresh" / "after.avi")
    w.wait_match()
    assert w.in_db() == {"fresh/new.webm", "fresh/after.avi"}


def test_watch_off_starts_nothing(live, library_dir: Path, media):
    w = live(watch="off")
    assert w.status.mode == "off"
    assert not any(t.name.startswith("lvs-watch") for t in threading.enumerate())
    shutil.copyfile(media["h264_mp4"], library_dir / "unseen.mp4")
    time.sleep(0.8)
    assert w.calls == []


def test_collapse_merges_crowded_siblings_and_caps_the_count():
    folders = [b"shows/s%02d" % i for i in range(60)] + [b"films/a", b"films/b"]
    assert settle.collapse(folders, lambda p: False) == [b"films/a", b"films/b", b"shows"]
    deep = [b"x/%d/y" % i for i in range(settle.MAX_PATHS + 5)]
    merged = settle.collapse(deep, lambda p: False)
    assert len(merged) <= settle.MAX_PATHS
    # A folder with something unsettled below it is never handed to the scanner.
    held = settle.collapse(folders, lambda p: p in (b"shows", b""))
    assert b"shows" not in held and b"films" in held and len(held) == 61
