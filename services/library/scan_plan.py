"""Planning a scan of one library: compare the walk with the database, touch nothing yet."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlite_utils import Database

from services.library.library import Library
from services.library.walker import FolderListing, Walker, join


@dataclass
class FileRow:
    """A file row as the scan needs it."""

    id: int
    path: bytes
    size: int
    mtime_ns: int
    present: bool
    media_id: int | None
    media_hash: str | None
    failed: bool  # its last probe failed at this size and mtime


@dataclass
class HashItem:
    """A file to hash: new on disk, changed, or re-read by a full scan."""

    library: Library
    folder: bytes
    name: bytes
    size: int
    mtime_ns: int
    row: FileRow | None  # the row at this path, if any
    media_hash: str | None = None
    error: str | None = None
    gone: bool = False  # vanished between the walk and the hash: moved or deleted, not failed

    @property
    def path(self) -> bytes:
        return join(self.folder, self.name)

    @property
    def abspath(self) -> bytes:
        return self.library.root_bytes + b"/" + self.path


@dataclass
class Plan:
    """What one library's scan found: the work to do and the rows to touch."""

    library: Library
    start: bytes
    listings: list[FolderListing] = field(default_factory=list)  # folders seen (digest changed)
    seen_folders: set[bytes] = field(default_factory=set)
    to_hash: list[HashItem] = field(default_factory=list)
    returned: list[FileRow] = field(default_factory=list)  # back at the same path, unchanged
    vanished: list[FileRow] = field(default_factory=list)
    gone_folders: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)  # mount points found empty: offline
    mounts: dict[bytes, bool] = field(default_factory=dict)  # folder -> is a mount point now
    unchanged: int = 0


def plan_library(
    db: Database,
    lib: Library,
    start: bytes,
    walker: Walker,
    *,
    full: bool,
    exclude: set[tuple[int, int]],
    progress: Callable[[int], None],
) -> Plan:
    """Walk `start` in a library and work out what changed since the database last looked."""
    plan = Plan(lib, start)
    sql = "SELECT id, path, digest, file_count, present, is_mount FROM folders WHERE library_id = ?"
    args: list = [lib.id]
    if start:
        # The folder and everything under it: paths between "start/" and "start0" ("0" follows "/").
        sql += " AND (path = ? OR (path >= ? AND path < ?))"
        args += [start, start + b"/", start + b"0"]
    folders = {row[1]: row for row in db.execute(sql, args)}
    known = None if full else {p: r[2] for p, r in folders.items() if r[4] and r[2] is not None}
    try:
        walk = walker.walk(
            lib.root_bytes, start, known=known, exclude=frozenset(exclude), progress=progress
        )
    except FileNotFoundError:
        walk = None  # the scanned folder itself is gone: everything under it vanished
    offline: set[bytes] = set()
    if walk is not None:
        plan.unreadable = [os.fsdecode(p) for p in walk.failed]
        plan.seen_folders = set(walk.folders)
        offline = set(walk.failed) | _unmounted(plan, walk.folders, folders)
    protected = tuple(p + b"/" for p in offline)
    changed = [
        f
        for f in (walk.folders.values() if walk else ())
        if f.entries is not None and f.path not in offline and not f.path.startswith(protected)
    ]
    plan.listings = changed
    plan.unchanged = sum(
        folders[f.path][3] for f in (walk.folders.values() if walk else ()) if f.entries is None
    )
    gone = [
        row[0]
        for path, row in folders.items()
        if row[4]
        and path not in plan.seen_folders
        and not (path in offline or path.startswith(protected))
    ]
    plan.gone_folders = gone
    changed_ids = [folders[f.path][0] for f in changed if f.path in folders]
    rows = _file_rows(db, changed_ids + gone)
    by_folder: dict[int, dict[bytes, FileRow]] = {}
    for folder_id, row in rows:
        by_folder.setdefault(folder_id, {})[row.path] = row
    for folder_id in gone:
        plan.vanished += [r for r in by_folder.get(folder_id, {}).values() if r.present]
    for listing in changed:
        folder_id = folders[listing.path][0] if listing.path in folders else None
        _diff_folder(plan, listing, by_folder.get(folder_id, {}), full=full)
    return plan


def _unmounted(
    plan: Plan, seen: dict[bytes, FolderListing], rows: dict[bytes, tuple]
) -> set[bytes]:
    """Note which folders are mount points now; return the known ones found empty and unmounted.

    A share mounted on a folder inside a library looks, once unmounted, like an empty folder on
    the parent's device. Its files are then offline, not gone: nothing under it is marked missing
    until it is mounted again (or filled with files as a plain folder).
    """
    offline = set()
    for path, listing in seen.items():
        parent = seen.get(path.rpartition(b"/")[0]) if path else None
        if parent is None:
            continue
        mounted = listing.dev != parent.dev
        was = bool(rows[path][5]) if path in rows else False
        if mounted != was and (mounted or not listing.empty):
            plan.mounts[path] = mounted
        elif was and not mounted and listing.empty:
            offline.add(path)
            plan.unmounted.append(os.fsdecode(path))
    return offline


def _diff_folder(
    plan: Plan, listing: FolderListing, rows: dict[bytes, FileRow], *, full: bool
) -> None:
    """Sort one folder's entries into unchanged, returned, changed, new and vanished."""
    seen = set()
    for name, size, mtime_ns in listing.entries or ():
        path = join(listing.path, name)
        seen.add(path)
        row = rows.get(path)
        same = row is not None and row.size == size and row.mtime_ns == mtime_ns
        if same and not full:
            if row.present:
                plan.unchanged += 1
            else:
                plan.returned.append(row)
        elif same and row.failed:
            plan.unchanged += 1  # a failed file is not retried until its size or mtime changes
        else:
            plan.to_hash.append(HashItem(plan.library, listing.path, name, size, mtime_ns, row))
    plan.vanished += [r for p, r in rows.items() if r.present and p not in seen]


def _file_rows(db: Database, folder_ids: list[int]) -> list[tuple[int, FileRow]]:
    """Return (folder_id, row) for every file row in these folders."""
    out = []
    for i in range(0, len(folder_ids), 500):
        chunk = folder_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for r in db.execute(
            f"""SELECT f.folder_id, f.id, f.path, f.size, f.mtime_ns, f.present, f.media_id,
                       m.media_hash, e.file_id IS NOT NULL AND e.size = f.size
                       AND e.mtime_ns = f.mtime_ns
                FROM files f LEFT JOIN media m ON m.id = f.media_id
                LEFT JOIN probe_errors e ON e.file_id = f.id
                WHERE f.folder_id IN ({marks})""",
            chunk,
        ):
            out.append((r[0], FileRow(r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], bool(r[8]))))
    return out
