"""What the .nfo files say, as pages show it: a title's metadata, and a file's description.

The file's own values (title, plot, genres, cast...), never the user's: a user's tag or rating
wins where pages show both. `description` is the plot the VR APIs describe a file with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database


@dataclass(frozen=True)
class Meta:
    """What an .nfo says, as pages show it (the file's values, not the user's)."""

    title: str | None
    original_title: str | None
    year: int | None
    plot: str | None
    tagline: str | None
    runtime: int | None
    premiered: str | None
    rating: float | None
    genres: list[str]
    studios: list[str]
    tags: list[str]
    people: list[dict]
    uniqueids: dict[str, str]

    @property
    def cast(self) -> list[dict]:
        return [p for p in self.people if p.get("kind") == "actor"]

    @property
    def crew(self) -> list[dict]:
        return [p for p in self.people if p.get("kind") != "actor"]


_META_COLS = (
    "n.title, n.original_title, n.year, n.plot, n.tagline, n.runtime, n.premiered, n.rating, "
    "n.genres, n.studios, n.tags, n.people, n.uniqueids"
)


def meta(db: Database, nfo_id: int | None) -> Meta | None:
    """Return the .nfo's metadata, or None."""
    if nfo_id is None:
        return None
    r = db.execute(f"SELECT {_META_COLS} FROM nfo n WHERE n.sidecar_id = ?", [nfo_id]).fetchone()
    if r is None:
        return None
    return Meta(*r[:8], *(json.loads(x) for x in r[8:]))


def description(db: Database, file_id: int) -> str | None:
    """Return the plot to describe a file with (its own .nfo's, else its movie's or show's).

    For the DeoVR `description` and HereSphere `description` fields (SPEC appendix A).
    """
    row = db.execute(
        "SELECT coalesce((SELECT plot FROM nfo WHERE sidecar_id = fm.nfo_id), "
        "(SELECT n.plot FROM movies mv JOIN nfo n ON n.sidecar_id = mv.nfo_id "
        " WHERE mv.id = fm.movie_id), "
        "(SELECT n.plot FROM shows s JOIN nfo n ON n.sidecar_id = s.nfo_id WHERE s.id = fm.show_id)) "
        "FROM file_meta fm WHERE fm.file_id = ?",
        [file_id],
    ).fetchone()
    return row[0] if row else None
