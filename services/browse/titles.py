"""Genre and year: the filters a title's .nfo gives, read the same way on every page.

The Shows and Movies grids filter titles (services/shows/grid.py); folder and search pages filter
files by the title they belong to (a film's or a show's, `file_meta`, issue 17). Both parse the
request here, so "1990s" or "crime" means the same everywhere.

- A genre is free text (the .nfo's own words), whitespace-folded and capped; it only ever reaches
  SQL as a bound parameter and matches case-insensitively (the genre tables are NOCASE).
- A year is "1995" or a decade "1990s"; anything else is the caller's 400.

May import: the shared core (errors). Read by browse and shows.
"""

from __future__ import annotations

import re
from typing import Any

from services.errors import InvalidInput

YEAR_RE = re.compile(r"^(1[89]\d\d|2[01]\d\d)(s?)$")
MAX_GENRE = 100


def parse_genre(raw: str | None) -> str:
    """Return a genre filter's value: whitespace folded, at most MAX_GENRE characters."""
    return " ".join((raw or "").split())[:MAX_GENRE]


def parse_year(raw: str | None) -> str:
    """Return a year filter's value ("1995", "1990s" or ""); InvalidInput for anything else."""
    year = (raw or "").strip()
    if year and not YEAR_RE.match(year):
        raise InvalidInput("year must be like 1995 or 1990s")
    return year


def year_range(year: str) -> tuple[int, int] | None:
    """Return the first and last year a parsed year filter keeps, or None when it is empty."""
    if not year:
        return None
    m = YEAR_RE.match(year)
    if m is None:
        raise InvalidInput("year must be like 1995 or 1990s")
    first = int(m.group(1))
    return first, first + 9 if m.group(2) else first


def file_conditions(genre: str, year: str, params: dict[str, Any]) -> str:
    """Return SQL terms (each starting " AND") keeping files `f` whose film or show matches.

    A file belongs to a title through `file_meta` (a film's version or a show's episode); the
    year is the film's, else the show's. Each term is one primary-key seek per file.
    """
    sql = ""
    if genre:
        params["title_genre"] = genre
        sql += (
            " AND EXISTS (SELECT 1 FROM file_meta fm WHERE fm.file_id = f.id AND ("
            "EXISTS (SELECT 1 FROM movie_genres mg WHERE mg.genre = :title_genre"
            " AND mg.movie_id = fm.movie_id)"
            " OR EXISTS (SELECT 1 FROM show_genres sg WHERE sg.genre = :title_genre"
            " AND sg.show_id = fm.show_id)))"
        )
    years = year_range(year)
    if years is not None:
        params["title_ya"], params["title_yb"] = years
        sql += (
            " AND EXISTS (SELECT 1 FROM file_meta fm LEFT JOIN movies mv ON mv.id = fm.movie_id"
            " LEFT JOIN shows sh ON sh.id = fm.show_id WHERE fm.file_id = f.id"
            " AND coalesce(mv.year, sh.year) BETWEEN :title_ya AND :title_yb)"
        )
    return sql
