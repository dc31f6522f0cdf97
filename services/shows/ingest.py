"""After a scan: read the new and changed .nfo files and pictures, then regroup what changed.

Called by whoever ran the scan (the job runner, `flask scan`), so the watcher's scans get it too.
A sidecar that cannot be read is marked failed with its reason, logged, and counted in the scan's
report; it is not read again until it changes. Reading is bounded: an .nfo over the size cap is
refused from its size, one with a DTD at its first declaration, so a hostile file costs no more
than a good one.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from sqlite_utils import Database

from services import db as dbmod
from services.library.scan_report import ScanReport
from services.shows import artwork, grouping, nfo

log = logging.getLogger(__name__)

BATCH = 200


def after_scan(
    db: Database, data_dir: Path, report: ScanReport | None = None, *, full: bool = False
) -> None:
    """Read pending sidecars and regroup the folders the scan read (everything, once, at first).

    After a full scan (`flask scan --full`) every .nfo and picture is read again and everything
    is regrouped.
    """
    started = time.perf_counter()
    if full:
        with dbmod.write(db):
            db.execute("UPDATE sidecars SET status = 'pending' WHERE kind IN ('nfo', 'artwork')")
            db.execute("UPDATE shows_state SET regroup = 1")
    folders = read_pending(db, data_dir, report)
    if db.execute("SELECT regroup FROM shows_state").fetchone()[0]:
        grouped = grouping.regroup(db, None)
        with dbmod.write(db):
            db.execute("UPDATE shows_state SET regroup = 0")
    else:
        folders |= report.folders_read if report is not None else set()
        grouped = grouping.regroup(db, folders) if folders else 0
    if grouped or folders:
        log.info(
            "shows: %d files grouped, %d folders, in %.2fs",
            grouped,
            len(folders),
            time.perf_counter() - started,
        )


def read_pending(db: Database, data_dir: Path, report: ScanReport | None = None) -> set[int]:
    """Read every pending .nfo and artwork sidecar; return the folders they lie in."""
    folders: set[int] = set()
    while True:
        rows = db.execute(
            """SELECT s.id, s.folder_id, s.kind, s.role, s.size, l.root, fo.path, s.raw_name
               FROM sidecars s JOIN folders fo ON fo.id = s.folder_id
               JOIN libraries l ON l.id = fo.library_id
               WHERE s.status = 'pending' AND s.kind IN ('nfo', 'artwork') LIMIT ?""",
            [BATCH],
        ).fetchall()
        if not rows:
            return folders
        results = []
        for sid, folder_id, kind, role, _size, root, path, raw in rows:
            folders.add(folder_id)
            abspath = os.fsencode(root).rstrip(b"/") + b"/" + (path + b"/" if path else b"") + raw
            results.append((sid, kind, _read_one(abspath, kind, role, data_dir, report)))
        with dbmod.write(db):
            for sid, kind, (value, error) in results:
                if error is not None:
                    db.execute(
                        "UPDATE sidecars SET status = 'failed', reason = ? WHERE id = ?",
                        [error, sid],
                    )
                    db.execute("DELETE FROM nfo WHERE sidecar_id = ?", [sid])
                    db.execute("DELETE FROM artwork WHERE sidecar_id = ?", [sid])
                    continue
                if kind == "nfo":
                    row = value.row()
                    db.execute(
                        f"INSERT OR REPLACE INTO nfo (sidecar_id, {', '.join(row)}) "
                        f"VALUES (?, {', '.join('?' * len(row))})",
                        [sid, *row.values()],
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO artwork (sidecar_id, key, width, height) "
                        "VALUES (?, ?, ?, ?)",
                        [sid, value.key, value.width, value.height],
                    )
                db.execute("UPDATE sidecars SET status = 'ok', reason = NULL WHERE id = ?", [sid])


def _read_one(
    abspath: bytes, kind: str, role: str | None, data_dir: Path, report: ScanReport | None
) -> tuple[object, str | None]:
    where = os.fsdecode(abspath)
    try:
        if kind == "nfo":
            return nfo.read(abspath), None
        return artwork.make(abspath, data_dir, role), None
    except (nfo.NfoError, artwork.ArtworkError) as exc:
        reason = str(exc)
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # a decoder's surprise must not fail the scan that found the file
        log.debug("reading %s", where, exc_info=True)
        reason = f"unreadable: {type(exc).__name__}: {str(exc)[:200]}"
    what = ".nfo" if kind == "nfo" else "picture ignored"
    log.warning("%s failed: %s: %s", what, where, reason)
    if report is not None:
        report.failed += 1
        if len(report.failures) < 1000:
            report.failures.append((where, reason))
    return None, reason
