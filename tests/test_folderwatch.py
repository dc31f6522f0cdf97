"""services/playback/folderwatch.py: a segment request's waiter wakes when its encoder lists a
segment or ends, not on every write of the segment, and not later than its timeout."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from services.playback import folderwatch
from services.playback.folderwatch import FolderWatch

NAMES = ("list.csv", "exit")


def _after(seconds: float, action) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_it_wakes_at_a_listed_segment_not_at_other_writes(tmp_path: Path) -> None:
    with FolderWatch(tmp_path, NAMES) as watch:
        assert watch.watching  # Linux: inotify
        writer = _after(0.05, lambda: (tmp_path / "0.ts").write_bytes(b"G" * 188))
        started = time.monotonic()
        watch.wait(0.4)  # a segment's bytes are no reason to look
        assert time.monotonic() - started >= 0.35
        writer.join()
        writer = _after(0.05, lambda: (tmp_path / "list.csv").write_text("0.ts,0.0,6.0\n"))
        started = time.monotonic()
        watch.wait(5.0)
        assert 0.04 <= time.monotonic() - started < 1.0  # woken by the list, long before 5 s
        writer.join()


def test_it_wakes_when_the_run_ends_or_its_folder_goes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with FolderWatch(run, NAMES) as watch:
        writer = _after(0.05, lambda: (run / "exit").write_text("0\n"))
        started = time.monotonic()
        watch.wait(5.0)
        assert time.monotonic() - started < 1.0
        writer.join()
    with FolderWatch(run, NAMES) as watch:
        remover = _after(0.05, lambda: shutil.rmtree(run))
        started = time.monotonic()
        watch.wait(5.0)
        assert time.monotonic() - started < 1.0  # restarted elsewhere: look again at once
        remover.join()


def test_without_inotify_or_its_folder_it_sleeps_the_timeout(tmp_path: Path, monkeypatch) -> None:
    gone = FolderWatch(tmp_path / "gone", NAMES)  # removed before the waiter looked
    assert not gone.watching
    monkeypatch.setattr(folderwatch, "_libc", False)  # no inotify here
    with FolderWatch(tmp_path, NAMES) as watch:
        assert not watch.watching
        started = time.monotonic()
        watch.wait(0.05)
        assert time.monotonic() - started >= 0.05
