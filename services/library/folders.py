"""Library folders as /browse/ shows them: URL names, lookup by path, subfolders, roots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from services.errors import NotFound
from services.library.library import Library, list_libraries


@dataclass(frozen=True)
class Folder:
    """A folder of a library; `url_path` is how /browse/ names it."""

    id: int
    library_id: int
    rel_path: str
    name: str
    parent_id: int | None
    file_count: int
    url_path: str
    cover: str | None = None  # media_hash of its first item, for the folder card
    subfolders: int = 0

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        """Return (name, url_path) from the library down to this folder."""
        parts = self.url_path.split("/")
        return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def libraries(db: Database, roots: Sequence[Path]) -> dict[str, Library]:
    """Return the configured libraries by URL name: the root's name, or name-id when two share it."""
    wanted = {str(r) for r in roots}
    libs = [lib for lib in list_libraries(db) if lib.root in wanted]
    names = [lib.name for lib in libs]
    return {
        (lib.name if names.count(lib.name) == 1 else f"{lib.name}-{lib.id}"): lib for lib in libs
    }


def folder_url_path(
    db: Database, roots: Sequence[Path], library_id: int, rel_path: str
) -> str | None:
    """Return the /browse/ path of a folder, None when its library is no longer configured."""
    for slug, lib in libraries(db, roots).items():
        if lib.id == library_id:
            return f"{slug}/{rel_path}" if rel_path else slug
    return None


_FOLDER_COLUMNS = (
    "fo.id, fo.library_id, fo.rel_path, fo.name, fo.parent_id, fo.file_count, "
    "(SELECT m.media_hash FROM files f INDEXED BY files_by_name JOIN media m ON m.id = f.media_id "
    " WHERE f.folder_id = fo.id AND f.present = 1 AND f.media_id IS NOT NULL "
    " ORDER BY f.name COLLATE NOCASE, f.id LIMIT 1), "
    "(SELECT count(*) FROM folders c WHERE c.parent_id = fo.id AND c.present = 1)"
)


def _folder(row: Sequence[Any], slug: str) -> Folder:
    url = f"{slug}/{row[2]}" if row[2] else slug
    return Folder(row[0], row[1], row[2], row[3], row[4], row[5], url, row[6], row[7])


def find_folder(db: Database, roots: Sequence[Path], path: str) -> Folder:
    """Return the folder named by a /browse/ path (library name, then the folder's path in it).

    Only the database is consulted: a path never reaches the filesystem. Empty, `.` and `..`
    segments and backslashes are refused outright.
    """
    parts = path.strip("/").split("/")
    if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise NotFound("no such folder")
    libs = libraries(db, roots)
    lib = libs.get(parts[0])
    if lib is None:
        raise NotFound("no such library")
    rel = "/".join(parts[1:])
    row = db.execute(
        f"SELECT {_FOLDER_COLUMNS} FROM folders fo "
        "WHERE fo.library_id = ? AND fo.rel_path = ? AND fo.present = 1 ORDER BY fo.id LIMIT 1",
        [lib.id, rel],
    ).fetchone()
    if row is None:
        raise NotFound("no such folder")
    return _folder(row, parts[0])


def subfolders(db: Database, folder: Folder) -> list[Folder]:
    """Return a folder's present subfolders by name, each with its cover and counts."""
    slug = folder.url_path.split("/")[0]
    rows = db.execute(
        f"SELECT {_FOLDER_COLUMNS} FROM folders fo WHERE fo.parent_id = ? AND fo.present = 1 "
        "ORDER BY fo.name COLLATE NOCASE",
        [folder.id],
    ).fetchall()
    return [_folder(r, slug) for r in rows]


def library_roots(db: Database, roots: Sequence[Path]) -> list[Folder]:
    """Return the root folder of every configured library that has been scanned."""
    found = []
    for slug, lib in libraries(db, roots).items():
        row = db.execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders fo "
            "WHERE fo.library_id = ? AND fo.rel_path = '' ORDER BY fo.id LIMIT 1",
            [lib.id],
        ).fetchone()
        if row is not None:
            found.append(replace(_folder(row, slug), name=lib.name))
    return found
