"""The Shows, show, season and Movies pages' queries: keyset pages over the grouped tables.

A grid page is one query on an index of its sort (shows by title; movies by title, year, date
added, rating, quality), cut by a row-value seek from the last card of the previous page, so a
deep page costs what the first does at 100k or 1M items (bench/b6_shows.py). Pictures: a show's
or movie's poster from its folder when it has one, else a frame grab of its first episode or
best version.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services.errors import InvalidInput, NotFound

PAGE = 60
MOVIE_SORTS = {
    # name: (label, key column, the index's order)
    "title": ("Title", None),
    "year": ("Year", "year_key"),
    "added": ("Date added", "added_key"),
    "rating": ("Rating", "rating_key"),
    "quality": ("Quality", "quality_key"),
}
_CURSOR_RE = re.compile(r"^(-?[0-9.e+-]*)~(\d+)~(.*)$", re.DOTALL)
_YEAR_RE = re.compile(r"^(1[89]\d\d|2[01]\d\d)(s?)$")
MAX_GENRE = 100


@dataclass(frozen=True)
class Filters:
    """The Shows and Movies pages' filters: a genre from the .nfo files, a year or a decade."""

    genre: str = ""
    year: str = ""  # "1995" or "1990s"

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("genre", self.genre), ("year", self.year)) if v}

    def sql(self, table: str) -> tuple[str, dict[str, Any]]:
        """Return the WHERE terms (each starting with AND) and their arguments."""
        where, args = "", {}
        if self.year:
            m = _YEAR_RE.match(self.year)
            assert m  # parse_filters checked it
            first = int(m.group(1))
            last = first + 9 if m.group(2) else first
            where += f" AND {table}.year BETWEEN :y0 AND :y1"
            args.update(y0=first, y1=last)
        if self.genre:
            # The genre walks the sort's index and keeps the titles whose .nfo names it.
            where += (
                f" AND EXISTS (SELECT 1 FROM nfo n, json_each(n.genres) g WHERE "
                f"n.sidecar_id = {table}.nfo_id AND g.value = :genre COLLATE NOCASE)"
            )
            args["genre"] = self.genre
        return where, args


def parse_filters(args: Any) -> Filters:
    """Return the filters of a request's query; InvalidInput for a malformed year."""
    genre = " ".join((args.get("genre") or "").split())[:MAX_GENRE]
    year = (args.get("year") or "").strip()
    if year and not _YEAR_RE.match(year):
        raise InvalidInput("year must be like 1995 or 1990s")
    return Filters(genre, year)


_genres_lock = threading.Lock()
_genres: dict[tuple[str, str], tuple[int, list[str]]] = {}


def genres(db: Database, table: str) -> list[str]:
    """Return the genres the .nfo files of shows or movies name, A to Z (at most 200).

    Reading them walks every .nfo of that kind, so the list is kept per database until the search
    index changes (search_generation: the regrouping that follows a changed .nfo bumps it).
    """
    kind = {"shows": "tvshow", "movies": "movie"}[table]
    path = db.execute("PRAGMA database_list").fetchone()[2]
    gen = db.execute("SELECT n FROM search_generation").fetchone()[0]
    with _genres_lock:
        held = _genres.get((path, kind))
        if held is not None and held[0] == gen:
            return held[1]
    rows = db.execute(
        "SELECT DISTINCT g.value FROM nfo n, json_each(n.genres) g WHERE n.kind = ? "
        "ORDER BY g.value COLLATE NOCASE LIMIT 200",
        [kind],
    ).fetchall()
    found = [r[0] for r in rows if isinstance(r[0], str)]
    with _genres_lock:
        _genres[(path, kind)] = (gen, found)
    return found


@dataclass(frozen=True)
class Art:
    """A cached picture: its key (for the artwork URL) and its size, for the aspect ratio."""

    key: str
    width: int
    height: int


def _art(key: str | None, width: int | None, height: int | None) -> Art | None:
    return Art(key, width or 0, height or 0) if key else None


@dataclass(frozen=True)
class ShowCard:
    id: int
    title: str
    year: int | None
    episodes: int
    seasons: int
    poster: Art | None
    frame: str | None  # media_hash of the first episode, for its frame grab


@dataclass(frozen=True)
class MovieCard:
    id: int
    title: str
    year: int | None
    rating: float | None  # the file's
    stars: int | None  # the user's, which wins
    quality: int
    versions: int
    poster: Art | None
    media_hash: str  # the best version
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


_POSTER = (
    "(SELECT a.key FROM artwork a WHERE a.sidecar_id = {col}), "
    "(SELECT a.width FROM artwork a WHERE a.sidecar_id = {col}), "
    "(SELECT a.height FROM artwork a WHERE a.sidecar_id = {col})"
)


def list_shows(
    db: Database, *, after: str | None = None, limit: int = PAGE, filters: Filters | None = None
) -> Page:
    """Return a page of shows in title order."""
    cut = parse_cursor(after)
    extra, args = (filters or Filters()).sql("s")
    where = "s.episodes > 0" + extra
    args["n"] = limit + 1
    if cut is not None:
        where += " AND (s.sort_title, s.id) > (:t, :i)"
        args.update(t=cut[2], i=cut[1])
    rows = db.execute(
        f"""SELECT s.id, s.title, s.year, s.episodes, s.seasons, a.key, a.width, a.height,
            (SELECT m.media_hash FROM file_meta fm INDEXED BY file_meta_show
             JOIN files f ON f.id = fm.file_id JOIN media m ON m.id = f.media_id
             WHERE fm.show_id = s.id AND f.present = 1
             ORDER BY fm.season, fm.episode LIMIT 1), s.sort_title
            FROM shows s INDEXED BY shows_by_title LEFT JOIN artwork a ON a.sidecar_id = s.poster_id
            WHERE {where}
            ORDER BY s.sort_title, s.id LIMIT :n""",
        args,
    ).fetchall()
    items = [ShowCard(r[0], r[1], r[2], r[3], r[4], _art(r[5], r[6], r[7]), r[8]) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    last = rows[limit - 1] if more else None
    return Page(items, cursor(None, last[0], last[9]) if last else None)


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
    if sort not in MOVIE_SORTS:
        raise InvalidInput(f"unknown sort {sort!r}")
    key = MOVIE_SORTS[sort][1]
    cut = parse_cursor(after)
    cols = f"mv.{key}, mv.sort_title, mv.id" if key else "mv.sort_title, mv.id"
    extra, args = (filters or Filters()).sql("mv")
    where = "mv.versions > 0" + extra
    args.update(n=limit + 1, user=user_id)
    if cut is not None:
        if key:
            where += f" AND ({cols}) > (:k, :t, :i)"
            args.update(k=cut[0] if cut[0] is not None else 0, t=cut[2], i=cut[1])
        else:
            where += f" AND ({cols}) > (:t, :i)"
            args.update(t=cut[2], i=cut[1])
    rows = db.execute(
        f"""SELECT mv.id, mv.title, mv.year, mv.rating, mv.quality, mv.versions,
            a.key, a.width, a.height, best.media_hash,
            (SELECT stars FROM ratings WHERE user_id = :user AND media_id = best.id),
            (SELECT watched FROM watch_state WHERE user_id = :user AND media_id = best.id),
            {f"mv.{key}" if key else "NULL"}, mv.sort_title
            FROM movies mv INDEXED BY movies_by_{sort}
            JOIN media best ON best.id = (SELECT f.media_id FROM file_meta fm
                 JOIN files f ON f.id = fm.file_id WHERE fm.movie_id = mv.id AND f.present = 1
                 ORDER BY fm.quality DESC, f.id LIMIT 1)
            LEFT JOIN artwork a ON a.sidecar_id = mv.poster_id
            WHERE {where} ORDER BY {cols} LIMIT :n""",
        args,
    ).fetchall()
    items = [
        MovieCard(
            r[0], r[1], r[2], r[3], r[10], r[4], r[5], _art(r[6], r[7], r[8]), r[9], bool(r[11])
        )
        for r in rows
    ]
    more = len(items) > limit
    last = rows[limit - 1] if more else None
    return Page(items[:limit], cursor(last[12], last[0], last[13]) if last else None)


# ---- one show, one season -------------------------------------------------------------------


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


@dataclass(frozen=True)
class Episode:
    file_id: int
    media_hash: str
    season: int
    episode: int | None
    episode_end: int | None
    title: str
    plot: str | None
    duration: float | None
    art: Art | None
    position: float
    watched: bool
    last_played: float | None

    @property
    def label(self) -> str:
        """Return S01E03, S01E03-E04, or E12 for an absolute number."""
        if self.episode is None:
            return f"S{self.season:02d}"
        end = f"-E{self.episode_end:02d}" if self.episode_end else ""
        return f"S{self.season:02d}E{self.episode:02d}{end}"

    @property
    def progress(self) -> float:
        if not self.position or not self.duration:
            return 0.0
        return min(1.0, self.position / self.duration)


@dataclass(frozen=True)
class Season:
    number: int
    episodes: int
    watched: int
    poster: Art | None
    frame: str | None

    @property
    def name(self) -> str:
        return "Specials" if self.number == 0 else f"Season {self.number}"


@dataclass(frozen=True)
class Show:
    id: int
    title: str
    year: int | None
    meta: Meta | None
    poster: Art | None
    fanart: Art | None
    seasons: list[Season]
    episodes: int
    watched: int
    next_up: Episode | None

    @property
    def progress(self) -> float:
        return self.watched / self.episodes if self.episodes else 0.0


def episodes(db: Database, show_id: int, user_id: int, season: int | None = None) -> list[Episode]:
    """Return a show's present episodes (of one season) in episode order, specials last."""
    rows = db.execute(
        f"""SELECT f.id, m.media_hash, fm.season, fm.episode, fm.episode_end,
            coalesce(n.title, p.episode_title, p.title || ' ' || coalesce(
                'S' || printf('%02d', fm.season) || 'E' || printf('%02d', fm.episode), f.name)),
            n.plot, m.duration, {_POSTER.format(col="fm.art_id")}, ws.position, ws.watched,
            ws.last_played
            FROM file_meta fm INDEXED BY file_meta_show JOIN files f ON f.id = fm.file_id
            JOIN media m ON m.id = f.media_id LEFT JOIN parses p ON p.file_id = f.id
            LEFT JOIN nfo n ON n.sidecar_id = fm.nfo_id
            LEFT JOIN watch_state ws ON ws.user_id = :user AND ws.media_id = m.id
            WHERE fm.show_id = :show AND f.present = 1
            {"AND fm.season = :season" if season is not None else ""}
            ORDER BY fm.season = 0, fm.season, fm.episode, f.name""",
        {"user": user_id, "show": show_id, "season": season},
    ).fetchall()
    out = []
    seen: set[tuple] = set()
    for r in rows:
        if (r[2], r[3]) in seen and r[3] is not None:
            continue  # another version of the same episode: the watch page offers it
        seen.add((r[2], r[3]))
        out.append(
            Episode(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                _art(r[8], r[9], r[10]),
                r[11] or 0.0,
                bool(r[12]),
                r[13],
            )  # fmt: skip
        )
    return out


def next_up(eps: list[Episode]) -> Episode | None:
    """Return the episode to watch next: one begun, else the one after the last watched.

    Specials are not offered after the last regular episode; they come up only when begun.
    """
    begun = [e for e in eps if e.position and not e.watched]
    if begun:
        return max(begun, key=lambda e: e.last_played or 0)
    regular = [e for e in eps if e.season != 0]
    played = [i for i, e in enumerate(regular) if e.watched]
    if not played:
        return regular[0] if regular else (eps[0] if eps else None)
    last = max(played, key=lambda i: regular[i].last_played or 0)
    for e in regular[last + 1 :]:
        if not e.watched:
            return e
    for e in regular:
        if not e.watched:
            return e
    return None


def show(db: Database, show_id: int, user_id: int) -> Show:
    """Return a show with its seasons, progress and next episode; NotFound when unknown."""
    r = db.execute(
        f"""SELECT s.id, s.title, s.year, s.nfo_id, {_POSTER.format(col="s.poster_id")},
            {_POSTER.format(col="s.fanart_id")} FROM shows s WHERE s.id = ? AND s.episodes > 0""",
        [show_id],
    ).fetchone()
    if r is None:
        raise NotFound("no such show")
    eps = episodes(db, show_id, user_id)
    posters = {
        n: _art(k, w, h)
        for n, k, w, h in db.execute(
            f"SELECT se.season, {_POSTER.format(col='se.poster_id')} FROM seasons se "
            "WHERE se.show_id = ?",
            [show_id],
        ).fetchall()
    }
    seasons: dict[int, list[Episode]] = {}
    for e in eps:
        seasons.setdefault(e.season, []).append(e)
    order = sorted(seasons, key=lambda n: (n == 0, n))
    return Show(
        id=r[0],
        title=r[1],
        year=r[2],
        meta=meta(db, r[3]),
        poster=_art(r[4], r[5], r[6]),
        fanart=_art(r[7], r[8], r[9]),
        seasons=[
            Season(
                n,
                len(seasons[n]),
                sum(e.watched for e in seasons[n]),
                posters.get(n),
                seasons[n][0].media_hash,
            )
            for n in order
        ],
        episodes=len(eps),
        watched=sum(e.watched for e in eps),
        next_up=next_up(eps),
    )


def description(db: Database, file_id: int) -> str | None:
    """Return the plot to describe a file with (its own .nfo's, else its movie's or show's).

    For the DeoVR `description` and HereSphere `description` fields (SPEC appendix A), when
    those APIs come.
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
