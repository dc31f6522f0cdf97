"""The scan: bring the database in line with the disk.

One scan at a time (a lock file in the data dir, shared by the server and the CLI). The walk says
what is on disk; folders whose digest is unchanged cost nothing more. New and changed files are
hashed; a new path whose media_hash belongs to a file that vanished is a move, and keeps its row and
so its user data. Files that vanish are marked missing, never deleted, and never at all while their
library root is offline or their folder could not be read. New content is probed last, in worker
processes that can be stopped on a deadline.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from config import Settings
from services import db as dbmod
from services import fsutil
from services.errors import LVSError, ScanBusy
from services.library import library, subtitle_files
from services.library.identity import oshash
from services.library.probe_pool import ProbePool
from services.library.scan_plan import Plan, plan_library
from services.library.scan_report import ScanReport
from services.library.scan_write import Writer
from services.library.walker import Walker

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # phase, done, total (None: unknown)
# What opening a path says when the file is no longer there (a folder on its path renamed too).
VANISHED = (FileNotFoundError, NotADirectoryError)


@contextmanager
def scan_lock(data_dir: Path) -> Iterator[None]:
    """Hold the one-scan-at-a-time lock, or raise ScanBusy."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "scan.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScanBusy("another scan is already running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def walk_workers(settings: Settings, lib: library.Library) -> int:
    """Return how many processes walk a library: few on network mounts, one per CPU locally."""
    if settings.scan_workers:
        return settings.scan_workers
    return 3 if lib.is_network else max(2, min(8, os.cpu_count() or 2))


def resolve_scope(
    libraries: list[library.Library], paths: list[Path]
) -> list[tuple[library.Library, bytes]]:
    """Map PATH arguments to (library, folder relative to its root); refuse paths outside them."""
    scope = []
    for path in paths:
        # abspath, not realpath: a folder that vanished must still resolve, to mark its files.
        target = os.fsencode(os.path.abspath(path))
        for lib in libraries:
            root = lib.root_bytes.rstrip(b"/")
            if target == root or target.startswith(root + b"/"):
                scope.append((lib, target[len(root) + 1 :]))
                break
        else:
            raise LVSError(f"{path} is not inside a library folder (see LVS_MEDIA_DIRS)")
    return scope


def scan(
    db: Database,
    settings: Settings,
    *,
    paths: list[Path] | None = None,
    full: bool = False,
    progress: Progress | None = None,
    probe_pool: ProbePool | None = None,
) -> ScanReport:
    """Scan the configured libraries, or only the folders in `paths`, and return what changed."""
    started = time.time()
    tick = time.perf_counter()
    report = ScanReport()
    progress = progress or (lambda phase, done, total: None)
    libraries = library.sync_libraries(db, settings.media_dirs)
    scope = resolve_scope(libraries, paths) if paths else [(lib, b"") for lib in libraries]
    own_pool = probe_pool is None
    pool = probe_pool or ProbePool(settings.effective_probe_workers(), settings.probe_timeout)
    exclude = _data_dir_key(settings.data_dir)
    with scan_lock(settings.data_dir):
        scan_id = _start_record(db, started, full, paths)
        try:
            plans: list[Plan] = []
            for lib, start in scope:
                reason = library.offline_reason(db, lib)
                library.set_state(db, lib, reason)
                if reason:
                    report.offline.append(f"{lib.root}: {reason}")
                    continue
                walker = Walker(walk_workers(settings, lib))
                try:
                    plan = plan_library(
                        db,
                        lib,
                        start,
                        walker,
                        full=full,
                        exclude=exclude,
                        progress=lambda n: progress("walk", n, None),
                    )
                finally:
                    walker.close()
                report.unreadable += [f"{lib.root}/{p}" for p in plan.unreadable]
                report.unmounted += [f"{lib.root}/{p}" for p in plan.unmounted]
                plans.append(plan)
            _hash_all(plans, settings, progress)
            writer = Writer(db, report)
            writer.apply_all(plans, full=full)
            _sync_sidecars(db, plans)
            _probe_pending(db, pool, writer, plans, progress)
            report.duration = time.perf_counter() - tick
            _finish_record(db, scan_id, report, None)
        except BaseException as exc:
            _finish_record(db, scan_id, report, str(exc) or type(exc).__name__)
            raise
        finally:
            if own_pool:
                pool.close()
    log.info(
        "scan done in %.2fs: %d new, %d changed, %d moved, %d missing, %d failed, %d unchanged",
        report.duration,
        report.new,
        report.changed,
        report.moved,
        report.missing,
        report.failed,
        report.unchanged,
    )
    summary = report.failure_summary()
    if summary:
        log.warning("%s", summary)
    return report


def _data_dir_key(data_dir: Path) -> set[tuple[int, int]]:
    """Return the (dev, ino) of the data dir, so a data dir inside a library is never walked."""
    try:
        st = os.stat(data_dir)
    except OSError:
        return set()
    return {(st.st_dev, st.st_ino)}


def _hash_all(plans: list[Plan], settings: Settings, progress: Progress) -> None:
    """Hash every new and changed file, a few at a time (reading is I/O, threads suffice)."""
    todo = [item for plan in plans for item in plan.to_hash]
    if not todo:
        return
    done = 0

    def run(item):  # type: ignore[no-untyped-def]
        try:
            item.media_hash, st = oshash(item.abspath)
            item.size, item.mtime_ns = st.st_size, st.st_mtime_ns
        except VANISHED:
            item.gone = True
        except OSError as exc:
            item.error = f"cannot read: {exc.strerror or exc}"
        return item

    with ThreadPoolExecutor(max(4, settings.scan_workers)) as pool:
        for _ in pool.map(run, todo):
            done += 1
            if done % 50 == 0 or done == len(todo):
                progress("hash", done, len(todo))
    for plan in plans:
        _set_aside_vanished(plan)


def _set_aside_vanished(plan: Plan) -> None:
    """Treat files gone since the walk as the walk not having seen them.

    A file renamed or deleted between the walk and the hash is a move or a disappearance, never
    a failure of its content (issue 20): its row, if any, vanished (a move elsewhere in this scan
    or the next finds it), and its folder's digest is not kept, so the next scan reads the
    folder again whatever it then holds.
    """
    gone = [item for item in plan.to_hash if item.gone]
    if not gone:
        return
    plan.to_hash = [item for item in plan.to_hash if not item.gone]
    plan.vanished += [item.row for item in gone if item.row is not None and item.row.present]
    folders = {item.folder for item in gone}
    for listing in plan.listings:
        if listing.path in folders:
            listing.digest = b""


def _probe_pending(
    db: Database, pool: ProbePool, writer: Writer, plans: list[Plan], progress: Progress
) -> None:
    """Probe every media row still pending in the scanned libraries, writing results in batches."""
    ids = [p.library.id for p in plans]
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"""SELECT m.id, m.kind, l.root, f.path, f.id FROM media m
            JOIN files f ON f.id = (SELECT id FROM files WHERE media_id = m.id AND present = 1
                                    AND library_id IN ({marks})
                                    -- a copy that has not failed first (see Writer._retry_failed)
                                    ORDER BY id IN (SELECT file_id FROM probe_errors) LIMIT 1)
            JOIN libraries l ON l.id = f.library_id
            WHERE m.probe_status = 'pending'""",
        ids,
    ).fetchall()
    if not rows:
        return
    total, done = len(rows), 0

    def run(row):  # type: ignore[no-untyped-def]
        media_id, kind, root, path, file_id = row
        abspath = os.fsencode(root) + b"/" + path
        try:
            result = fsutil.retry_estale(lambda: pool.probe(abspath, kind), "probe")
            return media_id, file_id, result, None
        except VANISHED:
            # Moved or deleted since it was listed: not a failure of its content (issue 20).
            # It stays pending, and is probed where the next scan finds it.
            return media_id, file_id, None, None
        except LVSError as exc:
            return media_id, file_id, None, str(exc)
        except OSError as exc:
            return media_id, file_id, None, f"cannot read: {exc.strerror or exc}"

    with ThreadPoolExecutor(pool.size) as threads:
        for media_id, file_id, result, error in threads.map(run, rows):
            if result is not None or error is not None:
                writer.probed(media_id, file_id, result, error)
            done += 1
            progress("probe", done, total)
    writer.finish()


def _sync_sidecars(db: Database, plans: list[Plan]) -> None:
    """Match the subtitle files of every folder that changed or vanished to their videos."""
    for plan in plans:
        changed = [listing.path for listing in plan.listings]
        for i in range(0, len(plan.gone_folders), 500):
            chunk = plan.gone_folders[i : i + 500]
            marks = ",".join("?" * len(chunk))
            changed += [
                bytes(r[0])
                for r in db.execute(f"SELECT path FROM folders WHERE id IN ({marks})", chunk)
            ]
        if changed:
            subtitle_files.sync_after_scan(db, plan.library.id, plan.library.root_bytes, changed)


def _start_record(db: Database, started: float, full: bool, paths: list[Path] | None) -> int:
    with dbmod.write(db):
        cursor = db.execute(
            "INSERT INTO scans (started_at, full, scope) VALUES (?, ?, ?)",
            [started, int(full), ", ".join(map(str, paths)) if paths else None],
        )
    return cursor.lastrowid


def _finish_record(db: Database, scan_id: int, report: ScanReport, error: str | None) -> None:
    with dbmod.write(db):
        db.execute(
            "UPDATE scans SET finished_at = ?, new = ?, changed = ?, moved = ?, missing = ?, "
            "failed = ?, unchanged = ?, offline = ?, error = ? WHERE id = ?",
            [
                time.time(),
                report.new,
                report.changed,
                report.moved,
                report.missing,
                report.failed,
                report.unchanged,
                "; ".join(report.offline) or None,
                error,
                scan_id,
            ],
        )
