"""B10: a new file shows up probed and with its thumbnail, within debounce + 1.5 × (probe + thumb).

Setup: a library of 2,000 files in 100 folders, indexed first, followed by the server's own
background pipeline as services.background starts it: the job runner (services.jobs.Jobs) and the
watcher with default timings (debounce 1 s, settle 0.5 s, inotify) calling jobs.scan(folders).
Each round, interleaved:
- baseline: the probe + thumbnail time for the file itself: ProbePool.probe + ProbePool.run(
  "thumbnail") on a warm worker, as the server does both, on a fresh copy outside the library;
- ours: a fresh copy written into lib/incoming/ as `cp` writes it (create, write, close). The clock
  starts at the close and stops when the database holds the file, probed, and its thumbnail is on
  disk. Every on_dirty call must name lib/incoming only, and its scan must have walked that folder
  only: a full rescan fails the bench.
Headline row: (ours - debounce) / (probe + thumbnail), target ≤ 1.5 (SPEC §5). The file is B3's 60 s
1080p H.264 clip; each copy gets a unique MP4 'free' box at its end so its media_hash is new.
Extra rows: one poll of a polled root (services.library.watch_root's re-walk) over B1's 100k-file tree
against `find`, and a 10,000-file storm (bench.extra): time to a matching database, calls, memory.

    python -m bench.b10_new_file [--pairs 7] [--no-poll] [--no-storm]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import struct
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.b3_thumbnail import ensure_clips
from bench.gen_tree import ensure_tree
from bench.harness import CORPUS_DIR, Bench, Samples, cmd

log = logging.getLogger(__name__)

TARGET = 1.5
WORK = CORPUS_DIR / "b10"
FOLDERS, PER_FOLDER = 100, 20
TIMEOUT = 60.0


def fresh_copy(src: Path, dest: Path, tag: int) -> float:
    """Copy src to dest as cp does, plus a unique 'free' box; return the time of the close."""
    with open(src, "rb") as inp, open(dest, "wb") as out:
        while chunk := inp.read(8 << 20):
            out.write(chunk)
        payload = b"lvs-b10 %d %d" % (os.getpid(), tag)
        out.write(struct.pack(">I4s", 8 + len(payload), b"free") + payload)
    return time.perf_counter()


def fill_library(lib: Path) -> None:
    """Make 2,000 small distinct files in 100 folders (not real media: they fail their probe)."""
    for f in range(FOLDERS):
        folder = lib / ("incoming" if f == 0 else f"f{f:03}")
        folder.mkdir(parents=True)
        for i in range(PER_FOLDER):
            (folder / f"{i:02}.mp4").write_bytes(b"b10 %d %d\n" % (f, i))


def wait_idle(jobs: Any, watcher: Any, timeout: float = 120.0) -> None:
    """Wait until the runner has nothing queued or running and the watcher nothing pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.status()
        busy = status.running or sum(status.queued.values())
        if not busy and not any(s.pending for s in watcher.status()):
            time.sleep(0.3)  # the sprite of the last file may just be starting
            if not jobs.status().running:
                return
        time.sleep(0.05)
    raise AssertionError("the job runner did not become idle")


def main() -> int:
    """Run B10 and write bench/out/b10.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--no-poll", action="store_true", help="skip the poll re-walk row")
    parser.add_argument("--no-storm", action="store_true", help="skip the 10,000-file storm")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("services").setLevel(logging.ERROR)  # a line per failed junk file is noise

    from config import load_settings
    from services import db as dbmod
    from services.jobs import Jobs
    from services.library.probe_pool import ProbePool
    from services.library.scanner import scan
    from services.library.watcher import Watcher
    from services.previews.thumbnails import is_ready, thumb_path

    clip = ensure_clips()[0].path  # 60 s 1080p H.264
    shutil.rmtree(WORK, ignore_errors=True)
    lib, outside = WORK / "lib", WORK / "outside"
    fill_library(lib)
    outside.mkdir(parents=True)
    settings = load_settings(
        {"media_dirs": [str(lib)], "data_dir": str(WORK / "data"), "watch": "events"}, environ={}
    )
    db = dbmod.open_db(settings.data_dir)
    started = time.perf_counter()
    scan(db, settings)
    bench = Bench(
        "b10",
        "new file -> probed with its thumbnail, vs probe + thumbnail of that file",
        params={
            "file": clip.name,
            "library_files": FOLDERS * PER_FOLDER,
            "debounce": settings.watch_debounce,
            "settle": settings.watch_settle,
            "thumbnail_width": settings.thumbnail_width,
        },
    )
    bench.extra["index_seconds"] = time.perf_counter() - started

    calls: list[tuple[list[Path], Any]] = []
    jobs = Jobs(settings)

    def on_dirty(folders: list[Path]) -> None:
        calls.append((folders, jobs.scan(folders)))

    watcher = Watcher(settings, on_dirty)
    watcher.start()
    assert watcher.wait_started(), watcher.status()
    pool = ProbePool(1, 60.0)
    base, ours, total = Samples("probe + thumbnail"), Samples("ours - debounce"), Samples("ours")
    incoming = lib / "incoming"
    try:
        for round_no in range(1 + args.pairs):  # one untimed warm-up round
            source = outside / f"base-{round_no}.mp4"
            fresh_copy(clip, source, 2 * round_no)
            raw = os.fsencode(source)
            t = time.perf_counter()
            pool.probe(raw, "video")
            pool.run("thumbnail", raw, "video", str(outside / "t.jpg"), settings.thumbnail_width)
            b = time.perf_counter() - t

            name = f"new-{round_no}.mp4"
            closed = fresh_copy(clip, incoming / name, 2 * round_no + 1)
            o = _wait_found(db, settings, f"incoming/{name}", is_ready, thumb_path) - closed
            wait_idle(jobs, watcher)
            _check_scoped(calls, incoming)
            log.info("round %d: ours %.3f s, probe + thumbnail %.3f s", round_no, o, b)
            if round_no:
                base.add(b)
                ours.add(o - settings.watch_debounce)
                total.add(o)
        bench.compare(
            "new 1080p H.264 file, beyond the debounce", base, ours, target=TARGET, headline=True
        )
        bench.compare("new 1080p H.264 file, end to end (informational)", base, total)
        bench.extra["scan_calls"] = [[str(p) for p in folders] for folders, _ in calls]
        if not args.no_storm:
            bench.extra["storm"] = storm(db, settings, watcher, jobs, calls, lib)
    finally:
        watcher.stop()
        jobs.close()
        pool.close()
        db.close()
    if not args.no_poll:
        poll_row(bench, args.pairs)
    bench.finish()
    return 0


def _wait_found(db: Any, settings: Any, rel: str, is_ready: Any, thumb_path: Any) -> float:
    """Return the time at which `rel` is present, probed ok, with its thumbnail on disk."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT m.media_hash, m.probe_status FROM files f JOIN media m ON m.id = f.media_id "
            "WHERE f.path = ? AND f.present = 1",
            [os.fsencode(rel)],
        ).fetchone()
        if row and row[1] == "ok" and is_ready(thumb_path(settings.data_dir, row[0])):
            return time.perf_counter()
        if row and row[1] == "failed":
            raise AssertionError(f"{rel}: probe failed")
        time.sleep(0.002)
    raise AssertionError(f"{rel} not found with its thumbnail after {TIMEOUT}s")


def _check_scoped(calls: list[tuple[list[Path], Any]], incoming: Path) -> None:
    """Fail unless every scan so far was of lib/incoming alone, and walked only that folder."""
    for folders, job in calls:
        if folders != [incoming]:
            raise AssertionError(f"on_dirty named {folders}, not only {incoming}")
        report = job.result
        if report is not None and report.unchanged + report.new > 2 * PER_FOLDER:
            raise AssertionError(f"a scan of {folders} looked at {report.unchanged} files")


def storm(db: Any, settings: Any, watcher: Any, jobs: Any, calls: list, lib: Path) -> dict:
    """Create 10,000 files in 100 new folders at once; measure the way to a matching database."""
    import psutil

    rss = psutil.Process().memory_info().rss
    before = len(calls)
    peak = {"pending": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["pending"] = max(peak["pending"], sum(s.pending for s in watcher.status()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t0 = time.perf_counter()
        for f in range(100):
            folder = lib / "storm" / f"s{f:03}"
            folder.mkdir(parents=True)
            for i in range(100):
                (folder / f"{i:03}.mkv").write_bytes(b"storm %d %d\n" % (f, i))
        written = time.perf_counter()
        query = "SELECT count(*) FROM files WHERE present = 1 AND CAST(path AS TEXT) LIKE 'storm/%'"
        while db.execute(query).fetchone()[0] < 10_000:
            if time.perf_counter() - written > 300:
                raise AssertionError("the storm did not reach the database in 300 s")
            time.sleep(0.05)
        matched = time.perf_counter()
    finally:
        stop.set()
        sampler.join()
    wait_idle(jobs, watcher, timeout=300)
    storm_calls = [folders for folders, _ in calls[before:]]
    result = {
        "files": 10_000,
        "write_seconds": written - t0,
        "matched_after_last_write_s": matched - written,
        "on_dirty_calls": len(storm_calls),
        "max_folders_per_call": max((len(c) for c in storm_calls), default=0),
        "peak_pending_folders": peak["pending"],
        "rss_growth_mb": (psutil.Process().memory_info().rss - rss) / 1e6,
    }
    log.info("storm: %s", result)
    return result


def poll_row(bench: Bench, pairs: int) -> None:
    """Time one poll of an unchanged 100k-file root against `find` over the same tree."""
    from config import load_settings
    from services.library.watch_root import RootWatch

    tree = ensure_tree(100_000, 1_000)
    settings = load_settings(
        {"media_dirs": [str(tree)], "data_dir": str(WORK / "poll-data"), "watch": "poll"},
        environ={},
    )
    host = SimpleNamespace(settings=settings, mounts=None, stopping=threading.Event())
    host.emit = lambda root, folders: None
    root = RootWatch(host, tree)  # type: ignore[arg-type]
    root._digests = root._walk({}) or {}
    bench.extra["poll_folders_held"] = len(root._digests)

    def one_poll() -> None:
        root._poll()
        if len(root.dirty):
            raise AssertionError("a poll of an unchanged tree found changes")

    bench.pair(
        "poll of an unchanged root, 100k files in 1,000 folders",
        cmd(["find", str(tree), "-type", "f", "-printf", "%s %T@ %p\\n"], timeout=300),
        one_poll,
        pairs=max(5, pairs),
        baseline_label="find",
        ours_label="poll walk",
    )


if __name__ == "__main__":
    sys.exit(main())
