"""The Shows and Movies grids: keyset pages of poster cards, their sorts and filters.

A page walks one index of its sort (`shows_by_title`; `movies_by_title/year/added/rating/
quality`, migration m0020) from the cursor, with a row-value seek from the last card of the
previous page: no OFFSET, no sort, so page 1,000 costs what page 1 does at 100k or 1M items
(bench/b6_shows.py). Each index also holds every column a card shows (as the gallery's
`files_by_name` does), so a page reads 60 index entries and not the rows, which lie at random
in the table; the card's picture is one lookup (the regrouping keeps the first episode's or the
best version's media on the row).

Filters keep that discipline:
- a genre: its rows (show_genres / movie_genres) hold the title's sort keys and year (m0020d),
  so `<kind>_genres_by_<sort>` (genre, key, title, id, year) is sought from the cursor as the
  title's own index would be, a year filter checked on its entries;
- one year: its titles are one range of `shows_by_year`/`movies_by_year`, already in title
  order (and in year order), so the title and year sorts seek it;
- a year or decade in another sort: when it keeps few titles (see RARE; counted on the year
  index) they are read there and sorted; otherwise the sort's index is walked and the year,
  which every index holds, checked on its entries.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlite_utils import Database

from services.browse import titles
from services.errors import InvalidInput

PAGE = 60
# A year filter keeping at most sqrt(RARE × titles) titles in a sort other than title and year
# drives the page: reading and sorting its titles costs ~1.7 µs each, walking the sort's index
# to find 60 of them ~0.2 µs an entry (the year is in the index), so the two cost the same there
# (measured at 100k and 1M items, bench/b6_shows.py).
RARE = {"year": 7.0}
MOVIE_SORTS = {
    # name: (label, key column of the sort's index: newest/best first are stored negated)
    "title": ("Title", None),
    "year": ("Year", "year_key"),
    "added": ("Date added", "added_key"),
    "rating": ("Rating", "rating_key"),
    "quality": ("Quality", "quality_key"),
}
_CURSOR_RE = re.compile(r"^(-?[0-9.e+-]*)~(\d+)~(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Filters:
    """The Shows and Movies pages' filters: a genre from the .nfo files, a year or a decade."""

    genre: str = ""
    year: str = ""  # "1995" or "1990s"

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("genre", self.genre), ("year", self.year)) if v}

    @property
    def years(self) -> tuple[int, int] | None:
        """Return the first and last year the filter keeps, or None."""
        return titles.year_range(self.year)


def parse_filters(args: Any) -> Filters:
    """Return the filters of a request's query; InvalidInput for a malformed year."""
    return Filters(titles.parse_genre(args.get("genre")), titles.parse_year(args.get("year")))


def genres(db: Database, table: str) -> list[str]:
    """Return the genres the .nfo files of shows or movies name, A to Z (at most 200).

    A skip scan of the genre table's primary key: one seek per genre, whatever the library's size.
    """
    kind = {"shows": "show", "movies": "movie"}[table]
    rows = db.execute(
        f"""WITH RECURSIVE g(name, n) AS (
              SELECT (SELECT min(genre) FROM {kind}_genres), 0
              UNION ALL
              SELECT (SELECT min(genre) FROM {kind}_genres WHERE genre > g.name), n + 1
              FROM g WHERE g.name IS NOT NULL AND n < 199)
            SELECT name FROM g WHERE name IS NOT NULL"""
    ).fetchall()
    return [r[0] for r in rows]


def title_filters(db: Database) -> tuple[list[str], bool]:
    """Return the genres of shows and movies together (A to Z, one spelling each) and whether
    the library has any show or movie: the folder and search pages' genre and year filters."""
    both = genres(db, "shows") + genres(db, "movies")
    merged = sorted({g.casefold(): g for g in reversed(both)}.values(), key=str.casefold)
    has_titles = db.execute(
        "SELECT EXISTS (SELECT 1 FROM movies WHERE versions > 0)"
        " OR EXISTS (SELECT 1 FROM shows WHERE episodes > 0)"
    ).fetchone()[0]
    return merged, bool(merged or has_titles)


class Art(NamedTuple):
    """A cached picture: its key (for the artwork URL) and its size, for the aspect ratio."""

    key: str
    width: int
    height: int


def art(key: str | None, width: int | None, height: int | None) -> Art | None:
    return Art(key, width or 0, height or 0) if key else None


class ShowCard(NamedTuple):
    id: int
    title: str
    year: int | None
    episodes: int
    seasons: int
    poster: Art | None
    frame: str | None  # media_hash of the first episode, for its frame grab


class MovieCard(NamedTuple):
    id: int
    title: str
    year: int | None
    rating: float | None  # the file's
    stars: int | None  # the user's, which wins
    quality: int
    versions: int
    poster: Art | None
    media_hash: str | None  # the best version
    watched: bool


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def cursor(key: Any, ident: int, title: str) -> str:
    """Return an opaque cursor: the last card's sort key, id and sort title."""
    return f"{'' if key is None else key}~{ident}~{title}"


def parse_cursor(raw: str | None) -> tuple[float | None, int, str] | None:
    """Return (key, id, sort title) from a cursor; InvalidInput for a malformed one."""
    if not raw:
        return None
    m = _CURSOR_RE.match(raw[:600])
    if not m:
        raise InvalidInput("bad page cursor")
    try:
        key = float(m.group(1)) if m.group(1) else None
    except ValueError:
        raise InvalidInput("bad page cursor") from None
    return key, int(m.group(2)), m.group(3)


@dataclass(frozen=True)
class _Kind:
    table: str  # shows | movies
    one: str  # show | movie
    live: str  # the partial indexes' condition
    year_index: str
    year_col: str  # the year index's first column
    negated: bool  # the year index holds -year


_SHOWS = _Kind("shows", "show", "t.episodes > 0", "shows_by_year", "year", False)
_MOVIES = _Kind("movies", "movie", "t.versions > 0", "movies_by_year", "year_key", True)


def _rare(db: Database, kind: _Kind, which: str, sql: str, args: dict[str, Any]) -> bool:
    """Return whether the filter's titles (sql) are few enough to drive the page (RARE)."""
    titles = db.execute(f"SELECT max(id) FROM {kind.table}").fetchone()[0] or 0
    cap = int(math.sqrt(RARE[which] * titles))
    return db.execute(f"SELECT count(*) FROM ({sql} LIMIT {cap + 1})", args).fetchone()[0] <= cap


def _source(
    db: Database, kind: _Kind, sort_key: str | None, filters: Filters, args: dict[str, Any]
) -> tuple[str, str, str]:
    """Return the FROM clause (the index walked), the filters' WHERE terms, and the alias whose
    sort columns (key, sort_title, id) order the page and take the cursor's seek.

    Adds the filters' arguments to `args` (genre; ya, yb: the years; y0, y1: the year index's
    bounds).
    """
    sort = "title" if sort_key is None else sort_key[:-4]
    years = filters.years
    plain = seek = ""
    if years is not None:
        # Walking another index: on the year, which every index holds. Walking the year index:
        # on its key, sought ("= :y0" for one year: SQLite then knows it is in title order).
        args.update(ya=years[0], yb=years[1])
        plain = " AND {alias}.year BETWEEN :ya AND :yb"
        lo, hi = (-years[1], -years[0]) if kind.negated else years
        args.update(y0=lo, y1=hi)
        one_year = years[0] == years[1]
        seek = f" AND t.{kind.year_col} " + ("= :y0" if one_year else "BETWEEN :y0 AND :y1")
    if filters.genre:
        # The genre's rows hold the sort keys and the year (m0020d): its sort index is sought.
        args["genre"] = filters.genre
        return (
            f"{kind.one}_genres g INDEXED BY {kind.one}_genres_by_{sort} "
            f"CROSS JOIN {kind.table} t ON t.id = g.{kind.one}_id",
            " AND g.genre = :genre" + plain.format(alias="g"),
            "g",
        )
    if years is not None:
        by_year = f"{kind.table} t INDEXED BY {kind.year_index}", seek, "t"
        if sort_key == "year_key" or (one_year and sort_key is None):
            return by_year  # the year index walks these years in the sort's order
        sql = (
            f"SELECT 1 FROM {kind.table} t INDEXED BY {kind.year_index} WHERE {kind.live} "
            f"AND t.{kind.year_col} BETWEEN :y0 AND :y1"
        )
        if _rare(db, kind, "year", sql, {"y0": args["y0"], "y1": args["y1"]}):
            return by_year  # few: read them there, and sort them
    return f"{kind.table} t INDEXED BY {kind.table}_by_{sort}", plain.format(alias="t"), "t"


def shows_query(
    db: Database, *, after: str | None = None, limit: int = PAGE, filters: Filters | None = None
) -> tuple[str, dict[str, Any]]:
    """Return the SQL and arguments of a page of shows (for list_shows, and tests' plans)."""
    cut = parse_cursor(after)
    args: dict[str, Any] = {"n": limit + 1}
    source, where, by = _source(db, _SHOWS, None, filters or Filters(), args)
    ident = "g.show_id" if by == "g" else "t.id"
    if cut is not None:
        where += f" AND ({by}.sort_title, {ident}) > (:t, :i)"
        args.update(t=cut[2], i=cut[1])
    sql = f"""SELECT t.id, t.title, t.year, t.episodes, t.seasons, a.key, a.width, a.height,
        (SELECT m.media_hash FROM media m WHERE m.id = t.frame_media_id), t.sort_title
        FROM {source} LEFT JOIN artwork a ON a.sidecar_id = t.poster_id
        WHERE {_SHOWS.live}{where} ORDER BY {by}.sort_title, {ident} LIMIT :n"""
    return sql, args


def list_shows(
    db: Database, *, after: str | None = None, limit: int = PAGE, filters: Filters | None = None
) -> Page:
    """Return a page of shows in title order."""
    rows = db.execute(*shows_query(db, after=after, limit=limit, filters=filters)).fetchall()
    items = [ShowCard(r[0], r[1], r[2], r[3], r[4], art(r[5], r[6], r[7]), r[8]) for r in rows]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items[:limit], cursor(None, last[0], last[9]) if last else None)


def movies_query(
    db: Database,
    *,
    sort: str = "title",
    after: str | None = None,
    user_id: int,
    limit: int = PAGE,
    filters: Filters | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the SQL and arguments of a page of movies (for list_movies, and tests' plans)."""
    if sort not in MOVIE_SORTS:
        raise InvalidInput(f"unknown sort {sort!r}")
    key = MOVIE_SORTS[sort][1]
    cut = parse_cursor(after)
    args: dict[str, Any] = {"n": limit + 1, "user": user_id}
    source, where, by = _source(db, _MOVIES, key, filters or Filters(), args)
    ident = "g.movie_id" if by == "g" else "t.id"
    cols = f"{by}.{key}, {by}.sort_title, {ident}" if key else f"{by}.sort_title, {ident}"
    if cut is not None:
        if key:
            where += f" AND ({cols}) > (:k, :t, :i)"
            args.update(k=cut[0] if cut[0] is not None else 0, t=cut[2], i=cut[1])
        else:
            where += f" AND ({cols}) > (:t, :i)"
            args.update(t=cut[2], i=cut[1])
    sql = f"""SELECT t.id, t.title, t.year, t.rating, t.quality, t.versions,
        a.key, a.width, a.height,
        (SELECT m.media_hash FROM media m WHERE m.id = t.best_media_id),
        (SELECT stars FROM ratings WHERE user_id = :user AND media_id = t.best_media_id),
        (SELECT watched FROM watch_state WHERE user_id = :user AND media_id = t.best_media_id),
        {f"t.{key}" if key else "NULL"}, t.sort_title
        FROM {source} LEFT JOIN artwork a ON a.sidecar_id = t.poster_id
        WHERE {_MOVIES.live}{where} ORDER BY {cols} LIMIT :n"""
    return sql, args


def list_movies(
    db: Database,
    *,
    sort: str = "title",
    after: str | None = None,
    user_id: int,
    limit: int = PAGE,
    filters: Filters | None = None,
) -> Page:
    """Return a page of movies in a sort of MOVIE_SORTS (newest, best, highest first)."""
    sql, args = movies_query(
        db, sort=sort, after=after, user_id=user_id, limit=limit, filters=filters
    )
    rows = db.execute(sql, args).fetchall()
    items = [
        MovieCard(
            r[0], r[1], r[2], r[3], r[10], r[4], r[5], art(r[6], r[7], r[8]), r[9], bool(r[11])
        )
        for r in rows
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items[:limit], cursor(last[12], last[0], last[13]) if last else None)
