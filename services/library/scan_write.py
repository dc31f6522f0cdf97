"""Writing a scan's plan to the database: moves, new rows, content changes, missing marks, probes."""

from __future__ import annotations

import logging
import os
import time

from sqlite_utils import Database

from services import db as dbmod
from services.library import sidecars
from services.library.filenames import parse_name
from services.library.probe import ProbeResult
from services.library.scan_plan import FileRow, HashItem, Plan
from services.library.scan_report import ScanReport
from services.library.walker import kind_of

log = logging.getLogger(__name__)

BATCH = 2000  # operations per write transaction, so the server's own writes never wait long


def _text(raw: bytes) -> str:
    """Return a path for display: invalid UTF-8 bytes become U+FFFD (the raw bytes stay in BLOBs)."""
    return raw.decode("utf-8", "replace")


class Writer:
    """Apply scan plans in short BEGIN IMMEDIATE transactions."""

    def __init__(self, db: Database, report: ScanReport):
        self.db = db
        self.report = report
        self.now = time.time()
        self._ops = 0
        self._probes: list[tuple[int, int, ProbeResult | None, str | None]] = []
        self._gone: dict[int, list[int]] = {}  # media id -> its rows whose files are gone

    # -- transactions -------------------------------------------------------------------------

    def _tick(self, n: int = 1) -> None:
        self._ops += n
        if self._ops >= BATCH:
            self.db.execute("COMMIT")
            self.db.execute("BEGIN IMMEDIATE")
            self._ops = 0

    # -- plans --------------------------------------------------------------------------------

    def apply_all(self, plans: list[Plan], *, full: bool) -> None:
        """Write every plan: folders first, then files (moves matched across libraries), then missing."""
        vanished: dict[str, list[FileRow]] = {}
        for plan in plans:
            for row in plan.vanished:
                if row.media_hash:
                    vanished.setdefault(row.media_hash, []).append(row)
        items = [item for plan in plans for item in plan.to_hash]
        media_ids = self._media_ids({i.media_hash for i in items if i.media_hash})
        with dbmod.write(self.db):
            folder_ids: dict[int, dict[bytes, int]] = {}
            for plan in plans:
                # Several plans may share a library (a scan of several of its folders).
                folder_ids.setdefault(plan.library.id, {}).update(self._folders(plan))
            for item in items:
                self._file(item, folder_ids[item.library.id], vanished, media_ids, full=full)
                self._tick()
            for plan in plans:
                self.report.unchanged += plan.unchanged
                for row in plan.returned:
                    self.db.execute(
                        "UPDATE files SET present = 1, missing_since = NULL WHERE id = ?", [row.id]
                    )
                    self.report.returned += 1
                    self._tick()
            gone = [r for rows in vanished.values() for r in rows]
            gone += [r for p in plans for r in p.vanished if not r.media_hash]
            for row in gone:
                self.db.execute(
                    "UPDATE files SET present = 0, missing_since = ? WHERE id = ?",
                    [self.now, row.id],
                )
                self._tick()
            self.report.missing += len(gone)
            for plan in plans:
                self.db.conn.executemany(
                    "UPDATE folders SET present = 0 WHERE id = ?", [(i,) for i in plan.gone_folders]
                )
                self.db.conn.executemany(
                    "DELETE FROM sidecars WHERE folder_id = ?", [(i,) for i in plan.gone_folders]
                )
                self.db.conn.executemany(
                    "UPDATE folders SET is_mount = ? WHERE library_id = ? AND path = ?",
                    [(int(m), plan.library.id, path) for path, m in plan.mounts.items()],
                )
                ids = folder_ids[plan.library.id]
                for listing in plan.listings:
                    if listing.sidecars is not None:
                        sidecars.sync(self.db, ids[listing.path], listing.sidecars)
                self.report.folders_read.update(ids[f.path] for f in plan.listings)
                self.report.folders_read.update(plan.gone_folders)
                self.db.conn.executemany(
                    "UPDATE folders SET digest = ?, file_count = ? WHERE id = ?",
                    [
                        (f.digest, len(f.entries or ()), folder_ids[plan.library.id][f.path])
                        for f in plan.listings
                    ],
                )

    def _media_ids(self, hashes: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        listed = sorted(hashes)
        for i in range(0, len(listed), 500):
            chunk = listed[i : i + 500]
            found.update(
                self.db.execute(
                    f"SELECT media_hash, id FROM media WHERE media_hash IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        return found

    def _folders(self, plan: Plan) -> dict[bytes, int]:
        """Upsert the plan's changed folders (parents first) and return path -> id for them."""
        lib = plan.library.id
        ids: dict[bytes, int] = {}
        for listing in sorted(plan.listings, key=lambda f: f.path.count(b"/") if f.path else -1):
            path = listing.path
            parent = None
            if path:
                parent_path = path.rpartition(b"/")[0]
                parent = ids.get(parent_path) or self._folder_id(lib, parent_path)
            # The digest is written last (see _digests): until then a crash leaves the folder
            # looking changed, so the next scan reads it again.
            row = self.db.execute(
                """INSERT INTO folders (library_id, parent_id, path, rel_path, name)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (library_id, path) DO UPDATE SET present = 1,
                   parent_id = excluded.parent_id RETURNING id""",
                [lib, parent, path, _text(path), _text(path.rpartition(b"/")[2])],
            ).fetchone()
            ids[path] = row[0]
        return ids

    def _folder_id(self, lib: int, path: bytes) -> int | None:
        row = self.db.execute(
            "SELECT id FROM folders WHERE library_id = ? AND path = ?", [lib, path]
        ).fetchone()
        return row[0] if row else None

    # -- one file -----------------------------------------------------------------------------

    def _file(
        self,
        item: HashItem,
        folders: dict[bytes, int],
        vanished: dict[str, list[FileRow]],
        media_ids: dict[str, int],
        *,
        full: bool,
    ) -> None:
        """Record one hashed file: unchanged content, changed content, a move, or a new file."""
        folder_id = folders.get(item.folder) or self._folder_id(item.library.id, item.folder)
        error = item.error or ("empty file" if item.size == 0 else None)
        if error:
            self._failed_file(item, folder_id, error)
            return
        row = item.row
        h = item.media_hash
        if row is not None and row.media_hash == h:
            changed = (row.size, row.mtime_ns) != (item.size, item.mtime_ns) or not row.present
            self._update_row(row.id, item, folder_id)
            if changed:
                self.report.changed += 1
            else:
                self.report.unchanged += 1
            if full:
                self.db.execute(
                    "UPDATE media SET probe_status = 'pending' WHERE id = ? AND probe_status = 'ok'",
                    [row.media_id],
                )
                self._parse(row.id, item.name)
            return
        if row is not None:
            self._content_changed(row, item, folder_id, media_ids)
            return
        moved = self._pop_move(h, item, vanished, media_ids)
        if moved is not None:
            self._update_row(moved, item, folder_id)
            self._parse(moved, item.name)
            self._retry_failed(media_ids.get(h))
            self.report.moved += 1
            return
        media_id = media_ids.get(h)
        if media_id is None:
            media_id = self._new_media(h, item)
            media_ids[h] = media_id
        else:
            if self.db.execute(
                "SELECT 1 FROM files WHERE media_id = ? AND present = 1 LIMIT 1", [media_id]
            ).fetchone():
                self.report.duplicates += 1
            self._retry_failed(media_id)
        self._insert_file(item, folder_id, media_id)
        self.report.new += 1

    def _retry_failed(self, media_id: int | None) -> None:
        """Probe failed content again now that it is found at another path (issue 20).

        A failure belongs to the content, but what failed may have been the place or the moment
        (a probe that timed out under load, a file that vanished mid-scan under the old code):
        the same content found elsewhere gets one more probe there, and if it is healthy, that
        clears its failure everywhere. Truly bad content costs one failed probe per new path.
        """
        if media_id is not None:
            self.db.execute(
                "UPDATE media SET probe_status = 'pending' WHERE id = ? AND probe_status = 'failed'",
                [media_id],
            )

    def _insert_file(self, item: HashItem, folder_id: int, media_id: int | None) -> int:
        """Insert a file row for a new path, with its parsed name; return its id."""
        file_id = self.db.execute(
            """INSERT INTO files (media_id, library_id, folder_id, path, name, size, mtime_ns,
               first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            [media_id, item.library.id, folder_id, item.path, _text(item.name), item.size,
             item.mtime_ns, self.now],
        ).fetchone()[0]  # fmt: skip
        self._parse(file_id, item.name)
        return file_id

    def _pop_move(
        self, h: str, item: HashItem, vanished: dict[str, list[FileRow]], media_ids: dict[str, int]
    ) -> int | None:
        """Return the id of the row this new path was moved from, if any.

        A row that vanished in this scan is the first choice (same name preferred). Then a row of
        the same content marked missing earlier (the file came back), and last a present row whose
        file is no longer on disk: a scan of only the destination folder never saw the source go.
        """
        rows = vanished.get(h)
        if rows:
            rows.sort(key=lambda r: r.path.rpartition(b"/")[2] != item.name)
            return rows.pop(0).id
        media_id = media_ids.get(h)
        if media_id is None:
            return None
        if media_id not in self._gone:
            # Worked out once per content per scan: a thousand new copies of one file must not
            # check every earlier copy on disk each (quadratic).
            self._gone[media_id] = [
                file_id
                for file_id, present, root, path in self.db.execute(
                    "SELECT f.id, f.present, l.root, f.path FROM files f "
                    "JOIN libraries l ON l.id = f.library_id WHERE f.media_id = ? "
                    "ORDER BY f.present DESC",
                    [media_id],
                ).fetchall()
                if not present or not os.path.lexists(os.fsencode(root) + b"/" + path)
            ]
        gone = self._gone[media_id]
        return gone.pop() if gone else None

    def _content_changed(
        self, row: FileRow, item: HashItem, folder_id: int, media_ids: dict[str, int]
    ) -> None:
        """A file was rewritten in place. Its user data follows it when the old content is gone."""
        h = item.media_hash
        target = media_ids.get(h)
        if target is None:
            others = self.db.execute(
                "SELECT 1 FROM files WHERE media_id = ? AND present = 1 AND id != ? LIMIT 1",
                [row.media_id, row.id],
            ).fetchone()
            if row.media_id is not None and not others:
                # The only copy changed (re-encoded, retagged): keep the media row, new fingerprint.
                self.db.execute(
                    "UPDATE media SET media_hash = ?, size = ?, probe_status = 'pending', "
                    "kind = ? WHERE id = ?",
                    [h, item.size, kind_of(item.name) or "video", row.media_id],
                )
                self.db.execute("DELETE FROM streams WHERE media_id = ?", [row.media_id])
                target = row.media_id
            else:
                target = self._new_media(h, item)
            media_ids[h] = target
        self.db.execute("UPDATE files SET media_id = ? WHERE id = ?", [target, row.id])
        self.db.execute("DELETE FROM probe_errors WHERE file_id = ?", [row.id])
        self._update_row(row.id, item, folder_id)
        self.report.changed += 1

    def _new_media(self, h: str, item: HashItem) -> int:
        return self.db.execute(
            "INSERT INTO media (media_hash, kind, size, added_at) VALUES (?, ?, ?, ?) RETURNING id",
            [h, kind_of(item.name) or "video", item.size, self.now],
        ).fetchone()[0]

    def _update_row(self, file_id: int, item: HashItem, folder_id: int) -> None:
        self.db.execute(
            """UPDATE files SET library_id = ?, folder_id = ?, path = ?, name = ?, size = ?,
               mtime_ns = ?, present = 1, missing_since = NULL WHERE id = ?""",
            [
                item.library.id,
                folder_id,
                item.path,
                _text(item.name),
                item.size,
                item.mtime_ns,
                file_id,
            ],
        )

    def _failed_file(self, item: HashItem, folder_id: int, reason: str) -> None:
        """Record a file that cannot be identified (empty, unreadable) once, with its reason."""
        if item.row is None:
            file_id = self._insert_file(item, folder_id, None)
        else:
            file_id = item.row.id
            self._update_row(file_id, item, folder_id)
        self._record_error(file_id, item.size, item.mtime_ns, reason, _text(item.abspath))

    def _record_error(
        self, file_id: int, size: int, mtime_ns: int, reason: str, where: str
    ) -> None:
        self.db.execute(
            """INSERT INTO probe_errors (file_id, reason, size, mtime_ns, failed_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (file_id) DO UPDATE SET reason = excluded.reason,
               size = excluded.size, mtime_ns = excluded.mtime_ns, failed_at = excluded.failed_at""",
            [file_id, reason, size, mtime_ns, self.now],
        )
        self.report.failed += 1
        self.report.reasons[reason] += 1
        if len(self.report.failures) < 1000:
            self.report.failures.append((where, reason))
        log.debug("failed: %s: %s", where, reason)  # the scan logs one line for all of them

    def _parse(self, file_id: int, name: bytes) -> None:
        parsed = parse_name(_text(name))
        p = parsed.projection
        self.db.execute(
            """INSERT OR REPLACE INTO parses (file_id, title, episode_title, year, season, episode,
               quality, hdr, codec, projection, stereo, eye_swap, lens, fov, projection_source)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                file_id,
                parsed.title,
                parsed.episode_title,
                parsed.year,
                parsed.season,
                parsed.episode,
                parsed.quality,
                parsed.hdr,
                parsed.codec,
                p.projection,
                p.stereo,
                int(p.eye_swap),
                p.lens,
                p.fov,
                p.source,
            ],
        )

    # -- probe results ------------------------------------------------------------------------

    def probed(
        self, media_id: int, file_id: int, result: ProbeResult | None, error: str | None
    ) -> None:
        """Queue one probe outcome; written in batches."""
        self._probes.append((media_id, file_id, result, error))
        if len(self._probes) >= 100:
            self.finish()

    def finish(self) -> None:
        """Write queued probe outcomes."""
        if not self._probes:
            return
        batch, self._probes = self._probes, []
        with dbmod.write(self.db):
            for media_id, file_id, result, error in batch:
                if result is None:
                    self.db.execute(
                        "UPDATE media SET probe_status = 'failed', probed_at = ? WHERE id = ?",
                        [time.time(), media_id],
                    )
                    size, mtime_ns, root, path = self.db.execute(
                        "SELECT f.size, f.mtime_ns, l.root, f.path FROM files f "
                        "JOIN libraries l ON l.id = f.library_id WHERE f.id = ?",
                        [file_id],
                    ).fetchone()
                    where = _text(os.fsencode(root) + b"/" + path)
                    self._record_error(file_id, size, mtime_ns, error or "probe failed", where)
                else:
                    self._store_probe(media_id, result)
                    self.db.execute(
                        "DELETE FROM probe_errors WHERE file_id IN "
                        "(SELECT id FROM files WHERE media_id = ?)",
                        [media_id],
                    )
                    self.report.probed += 1

    def _store_probe(self, media_id: int, r: ProbeResult) -> None:
        self.db.execute(
            """UPDATE media SET probe_status = 'ok', kind = ?, container = ?, duration = ?,
               width = ?, height = ?, fps = ?, bitrate = ?, video_codec = ?, audio_codec = ?,
               rotation = ?, taken_at = ?, orientation = ?, probed_at = ? WHERE id = ?""",
            [
                r.kind,
                r.container,
                r.duration,
                r.width,
                r.height,
                r.fps,
                r.bitrate,
                r.video_codec,
                r.audio_codec,
                r.rotation,
                r.taken_at,
                r.orientation,
                time.time(),
                media_id,
            ],
        )
        self.db.execute("DELETE FROM streams WHERE media_id = ?", [media_id])
        self.db.conn.executemany(
            """INSERT INTO streams (media_id, idx, type, codec, profile, bit_depth, width, height,
               fps, bitrate, channels, language, title, is_default, forced, hearing_impaired,
               hdr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    media_id,
                    s.index,
                    s.type,
                    s.codec,
                    s.profile,
                    s.bit_depth,
                    s.width,
                    s.height,
                    s.fps,
                    s.bitrate,
                    s.channels,
                    s.language,
                    s.title,
                    int(s.is_default),
                    int(s.forced),
                    int(s.hearing_impaired),
                    s.hdr,
                )
                for s in r.streams
            ],
        )
