"""Export and import every piece of user data as one JSON document.

What counts as user data is a registry, `USER_TABLES`, in import order (parents first). Every
other table is listed in `DERIVED_TABLES` (rebuilt by a scan, or short-lived); a test fails when
a migration adds a table that is in neither list, so a new table cannot be left out silently.

Media are referred to by `media_hash` (the content), not by row id, so an export imports into
a library indexed afresh on another machine; rows about media this library does not hold are
skipped and counted. Other ids (users, tags, playlists) are kept as they are: an import
replaces all user data with the file's, so the ids in it are consistent with each other.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput

FORMAT = "lvs-userdata"
VERSION = 1

USER_TABLES = (
    "users",
    "passkeys",
    "api_tokens",
    "watch_state",
    "tags",
    "media_tags",
    "ratings",
    "favorites",
    "playlists",
    "playlist_items",
    "markers",
    "projection_overrides",
    "vr_folders",
    "playback_prefs",
    "vr_write_back",  # issue 15 (m0016): what an admin lets the VR players change
)
DERIVED_TABLES = (
    "libraries",
    "folders",
    "media",
    "streams",
    "files",
    "parses",
    "probe_errors",
    "scans",
    "thumbs",
    "sessions",
    "webauthn_challenges",
    "rate_hits",
    "organize_generation",
    "search_fts",
    "search_vocab",
    "search_generation",
    "projections",
    "vr_folder_names",
    "live_changes",
    "_sqlite_migrations",
    # issue 17 (m0014): sidecar files and what the scan read from them; shows and movies
    "sidecars",
    "nfo",
    "artwork",
    "shows",
    "seasons",
    "movies",
    "file_meta",
    "shows_state",
    "show_genres",  # m0020
    "movie_genres",
    "subtitle_files",
)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows written and rows skipped (their media is not here), per table."""

    written: dict[str, int]
    skipped: dict[str, int]


def unclassified_tables(db: Database) -> list[str]:
    """Return tables that are neither user data nor derived: a new table nobody classified."""
    known = set(USER_TABLES) | set(DERIVED_TABLES)
    return [
        t
        for t in db.table_names()
        if t not in known and not t.startswith(("search_fts_", "sqlite_"))
    ]


def _present(db: Database) -> list[str]:
    names = set(db.table_names())
    return [t for t in USER_TABLES if t in names]


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    return value


def export(db: Database, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Return all user data as a JSON-able document (media referred to by media_hash)."""
    hashes = dict(db.execute("SELECT id, media_hash FROM media").fetchall())
    tables: dict[str, list[dict[str, Any]]] = {}
    # One read transaction: the export is a consistent picture even while the server writes.
    db.conn.execute("BEGIN")
    try:
        for table in _present(db):
            if progress:
                progress(table)
            cur = db.execute(f"SELECT * FROM [{table}]")
            cols = [d[0] for d in cur.description]
            rows = []
            for row in cur:
                item = {c: _encode(v) for c, v in zip(cols, row, strict=True)}
                if "media_id" in item:
                    item["media_hash"] = hashes.get(item.pop("media_id"))
                rows.append(item)
            tables[table] = rows
    finally:
        db.conn.execute("COMMIT")
    return {"format": FORMAT, "version": VERSION, "exported_at": time.time(), "tables": tables}


def import_(db: Database, doc: Any, progress: Callable[[str], None] | None = None) -> ImportReport:
    """Replace all user data with the document's, in one transaction; raise InvalidInput if bad."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput("not a user data export of this server (no 'format': 'lvs-userdata')")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise InvalidInput(f"export version {doc.get('version')!r} is newer than this server's")
    data = doc.get("tables")
    if not isinstance(data, dict) or any(not isinstance(v, list) for v in data.values()):
        raise InvalidInput("the export's 'tables' must map table names to lists of rows")
    unknown = sorted(set(data) - set(USER_TABLES))
    if unknown:
        raise InvalidInput(f"the export holds tables that are not user data: {', '.join(unknown)}")
    present = _present(db)
    # An import replaces all user data, and deleting a parent table (users, tags, playlists)
    # cascades to its children: a document without every table would wipe the ones it lacks.
    lacking = [t for t in present if t not in data]
    if lacking:
        raise InvalidInput(
            f"the export lacks tables {', '.join(lacking)}: refusing a partial import, "
            "which would erase them (export again with `flask export`)"
        )
    ids = dict(db.execute("SELECT media_hash, id FROM media").fetchall())
    written: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with dbmod.write(db):
        for table in reversed(present):
            db.execute(f"DELETE FROM [{table}]")
        for table in present:
            if progress:
                progress(table)
            cols = set(db[table].columns_dict)
            n = s = 0
            for row in data.get(table, []):
                if not isinstance(row, dict):
                    raise InvalidInput(f"{table}: a row is not an object")
                item = {k: _decode(v) for k, v in row.items()}
                if "media_hash" in item and "media_hash" not in cols:
                    media_id = ids.get(item.pop("media_hash"))
                    if media_id is None:
                        s += 1
                        continue
                    item["media_id"] = media_id
                item = {k: v for k, v in item.items() if k in cols}
                if not item:
                    continue
                names = ", ".join(f"[{k}]" for k in item)
                marks = ", ".join("?" for _ in item)
                try:
                    db.execute(
                        f"INSERT OR REPLACE INTO [{table}] ({names}) VALUES ({marks})",
                        list(item.values()),
                    )
                except Exception as exc:  # a constraint names the bad row better than a trace
                    raise InvalidInput(f"{table}: cannot import a row: {exc}") from None
                n += 1
            written[table] = n
            skipped[table] = s
    return ImportReport(written, skipped)
