"""Group files into shows, seasons and movies, from parsed names, folders and .nfo files.

An episode is a video whose name numbers it (S01E02, 1x02, EP12, "Show - 12") or whose own
`<name>.nfo` is an <episodedetails>. Its season comes from the name, else its .nfo, else a
"Season 2" / "Specials" folder (specials are season 0), else 1; a number without a season
(EP12) is absolute. Its show is the tvshow.nfo's title in the show folder (the folder above a
season folder, or its own), else the show named in the file name, else the show folder's name:
a show with the same name in two folders or two libraries is one show. A film is a video that
is not an episode and has a year (in its name or its folder's name, "Heat (1995)/heat.mkv") or
a movie .nfo; files of the same title and year are versions of one movie.

Regrouping works on folders: the files in the folders a scan read (and, below a folder whose
tvshow.nfo or posters changed, its season folders), so an unchanged library costs nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlite_utils import Database

from services import db as dbmod
from services.library.filenames import parse_name
from services.library.sidecars import VIDEO_ART_RE
from services.shows.quality import analyse

SEASON_FOLDER_RE = re.compile(
    r"^(?:season|series|staffel|saison|temporada|stagione|seizoen)[ ._-]*(\d{1,3})\b|^s(\d{1,3})$",
    re.IGNORECASE,
)
SPECIALS_RE = re.compile(r"^(?:specials?|season[ ._-]*0+)$", re.IGNORECASE)
_MULTI_SXE_RE = re.compile(r"[sS]\d{1,3}[ ._]?[eE](\d{1,4})((?:[-_ ]?[eE]\d{1,4}|-\d{1,4}\b)+)")
_MULTI_NXM_RE = re.compile(r"\b\d{1,2}x(\d{2,3})((?:[-_]?x\d{2,3}|-\d{1,2}x\d{2,3})+)")
_LAST_NUMBER_RE = re.compile(r"(\d{1,4})\D*$")
_KEY_RE = re.compile(r"[\W_]+", re.UNICODE)
_ARTICLES = ("the ", "a ", "an ")
CHUNK = 400  # folders per query


def title_key(title: str) -> str:
    """Return the key two spellings of one title share ("Marvel's Agents of S.H.I.E.L.D.")."""
    key = _KEY_RE.sub("", title.casefold())
    return key or title.casefold().strip()


def sort_title(title: str) -> str:
    """Return the title to sort by: without a leading article."""
    low = title.lower()
    for article in _ARTICLES:
        if low.startswith(article) and len(title) > len(article):
            return title[len(article) :]
    return title


def episode_end(name: str, first: int | None) -> int | None:
    """Return the last episode of a multi-episode file (S01E01-E02, S01E01E02, 1x01-1x02)."""
    if first is None:
        return None
    for regex in (_MULTI_SXE_RE, _MULTI_NXM_RE):
        m = regex.search(name)
        if m and int(m.group(1)) == first:
            last = _LAST_NUMBER_RE.search(m.group(2))
            if last:
                end = int(last.group(1))
                if first < end <= first + 20:
                    return end
    return None


def season_of_folder(name: str) -> int | None:
    """Return the season a folder's name stands for ("Season 02" → 2, "Specials" → 0), or None."""
    if SPECIALS_RE.match(name.strip()):
        return 0
    m = SEASON_FOLDER_RE.match(name.strip())
    if m:
        return int(m.group(1) or m.group(2))
    return None


@dataclass
class _Folder:
    id: int
    library_id: int
    parent_id: int | None
    rel_path: str
    name: str


@dataclass
class _Side:
    id: int
    name: str
    kind: str
    role: str | None
    nfo_kind: str | None = None
    title: str | None = None
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    sort_title: str | None = None
    rating: float | None = None


@dataclass
class _Group:
    title: str
    year: int | None = None
    nfo_id: int | None = None
    poster_id: int | None = None
    fanart_id: int | None = None
    sort: str | None = None
    rating: float | None = None
    season_posters: dict[int, int] = field(default_factory=dict)


class _Context:
    """Folders and their sidecars, loaded as regrouping needs them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.folders: dict[int, _Folder] = {}
        self.sides: dict[int, list[_Side]] = {}

    def load_folders(self, ids: Iterable[int]) -> None:
        todo = [i for i in set(ids) if i is not None and i not in self.folders]
        while todo:
            parents = set()
            for i in range(0, len(todo), CHUNK):
                chunk = todo[i : i + CHUNK]
                for row in self.db.execute(
                    "SELECT id, library_id, parent_id, rel_path, name FROM folders "
                    f"WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall():
                    self.folders[row[0]] = _Folder(*row)
                    if row[2] is not None:
                        parents.add(row[2])
            # Two levels up is enough: a file's folder, its season folder's show folder.
            todo = [p for p in parents if p not in self.folders]
            if all(self._depth_loaded(f) for f in list(self.folders.values())):
                break

    def _depth_loaded(self, folder: _Folder) -> bool:
        parent = self.folders.get(folder.parent_id) if folder.parent_id else None
        if folder.parent_id is None:
            return True
        if parent is None:
            return False
        return parent.parent_id is None or parent.parent_id in self.folders

    def load_sides(self, folder_ids: Iterable[int]) -> None:
        todo = [i for i in set(folder_ids) if i not in self.sides]
        for i in todo:
            self.sides[i] = []
        for i in range(0, len(todo), CHUNK):
            chunk = todo[i : i + CHUNK]
            for row in self.db.execute(
                "SELECT s.id, s.folder_id, s.name, s.kind, s.role, n.kind, n.title, n.year, "
                "n.season, n.episode, n.sort_title, n.rating FROM sidecars s "
                "LEFT JOIN nfo n ON n.sidecar_id = s.id LEFT JOIN artwork a ON a.sidecar_id = s.id "
                f"WHERE s.folder_id IN ({','.join('?' * len(chunk))}) AND s.kind != 'subtitle' "
                "AND s.status = 'ok' AND (n.sidecar_id IS NOT NULL OR a.sidecar_id IS NOT NULL)",
                chunk,
            ).fetchall():
                self.sides[row[1]].append(_Side(row[0], row[2], row[3], row[4], *row[5:]))

    def side(self, folder_id: int | None, *, name: str | None = None, role: str | None = None):
        for s in self.sides.get(folder_id, ()) if folder_id is not None else ():
            if name is not None and s.name.lower() == name.lower():
                return s
            if role is not None and s.role == role:
                return s
        return None


@dataclass
class _Row:
    id: int
    name: str
    folder_id: int
    first_seen: float
    title: str
    year: int | None
    season: int | None
    episode: int | None
    hdr: str | None
    width: int | None
    height: int | None
    codec: str | None
    bitrate: int | None
    channels: int | None
    bit_depth: int | None


_FILES_SQL = """
    SELECT f.id, f.name, f.folder_id, f.first_seen, coalesce(p.title, f.name), p.year, p.season,
           p.episode, p.hdr, m.width, m.height, m.video_codec, m.bitrate,
           (SELECT max(channels) FROM streams s WHERE s.media_id = m.id AND s.type = 'audio'),
           (SELECT max(bit_depth) FROM streams s WHERE s.media_id = m.id AND s.type = 'video')
    FROM files f JOIN media m ON m.id = f.media_id LEFT JOIN parses p ON p.file_id = f.id
    WHERE f.folder_id IN ({marks}) AND f.present = 1 AND m.kind = 'video'"""


def regroup(db: Database, folder_ids: Iterable[int] | None = None) -> int:
    """Regroup the files in these folders (all folders when None); return how many were grouped."""
    if folder_ids is None:
        ids = [r[0] for r in db.execute("SELECT id FROM folders WHERE present = 1").fetchall()]
    else:
        ids = sorted(set(folder_ids))
        ids = _with_season_folders(db, ids)
    done = 0
    for i in range(0, len(ids), CHUNK * 5):
        done += _regroup_chunk(db, ids[i : i + CHUNK * 5])
    return done


def _with_season_folders(db: Database, ids: list[int]) -> list[int]:
    """Add the subfolders (two levels) of folders that hold show-wide sidecars."""
    out = set(ids)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        marks = ",".join("?" * len(chunk))
        showy = [
            r[0]
            for r in db.execute(
                f"SELECT DISTINCT folder_id FROM sidecars WHERE folder_id IN ({marks}) AND "
                "((kind = 'nfo' AND name IN ('tvshow.nfo', 'movie.nfo')) OR "
                "(kind = 'artwork' AND role NOT LIKE 'video:%'))",
                chunk,
            ).fetchall()
        ]
        level = showy
        for _ in range(2):
            if not level:
                break
            level = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM folders WHERE parent_id IN ({','.join('?' * len(level))}) "
                    "AND present = 1",
                    level,
                ).fetchall()
            ]
            out.update(level)
    return sorted(out)


def _regroup_chunk(db: Database, folder_ids: list[int]) -> int:
    ctx = _Context(db)
    ctx.load_folders(folder_ids)
    rows: list[_Row] = []
    for i in range(0, len(folder_ids), CHUNK):
        chunk = folder_ids[i : i + CHUNK]
        rows += [
            _Row(*r) for r in db.execute(_FILES_SQL.format(marks=",".join("?" * len(chunk))), chunk)
        ]
    near = set(folder_ids)
    for fid in folder_ids:
        f = ctx.folders.get(fid)
        if f and f.parent_id:
            near.add(f.parent_id)
    ctx.load_sides(near)
    shows: dict[str, _Group] = {}
    movies: dict[str, _Group] = {}
    metas = []
    for row in rows:
        meta = _classify(ctx, row, shows, movies)
        metas.append(meta)
    now = time.time()
    with dbmod.write(db):
        old = {}
        for i in range(0, len(folder_ids), CHUNK):
            chunk = folder_ids[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            for fid, show_id, movie_id in db.execute(
                f"SELECT m.file_id, m.show_id, m.movie_id FROM file_meta m JOIN files f "
                f"ON f.id = m.file_id WHERE f.folder_id IN ({marks})",
                chunk,
            ).fetchall():
                old[fid] = (show_id, movie_id)
            db.execute(
                f"DELETE FROM file_meta WHERE file_id IN (SELECT id FROM files "
                f"WHERE folder_id IN ({marks}))",
                chunk,
            )
        show_ids = {k: _upsert(db, "shows", k, g, now) for k, g in shows.items()}
        movie_ids = {k: _upsert(db, "movies", k, g, now) for k, g in movies.items()}
        db.conn.executemany(
            """INSERT INTO file_meta (file_id, kind, show_id, movie_id, season, episode,
               episode_end, absolute, nfo_id, art_id, quality) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
            [
                (
                    m["file_id"],
                    m["kind"],
                    show_ids.get(m["show"]),
                    movie_ids.get(m["movie"]),
                    m["season"],
                    m["episode"],
                    m["episode_end"],
                    m["absolute"],
                    m["nfo_id"],
                    m["art_id"],
                    m["quality"],
                )
                for m in metas
            ],
        )
        touched_shows = set(show_ids.values()) | {s for s, _ in old.values() if s}
        touched_movies = set(movie_ids.values()) | {m for _, m in old.values() if m}
        for key, g in shows.items():
            for season, poster in g.season_posters.items():
                db.execute(
                    "INSERT INTO seasons (show_id, season, poster_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (show_id, season) DO UPDATE SET poster_id = excluded.poster_id",
                    [show_ids[key], season, poster],
                )
        recount(db, touched_shows, touched_movies)
    return len(rows)


def _upsert(db: Database, table: str, key: str, g: _Group, now: float) -> int:
    sort = g.sort or sort_title(g.title)
    extra_cols = ", rating" if table == "movies" else ", fanart_id"
    extra_val = g.rating if table == "movies" else g.fanart_id
    return db.execute(
        f"""INSERT INTO {table} (key, title, sort_title, year, nfo_id, poster_id, added_at
            {extra_cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET
            title = CASE WHEN excluded.nfo_id IS NOT NULL OR {table}.nfo_id IS NULL
                         THEN excluded.title ELSE {table}.title END,
            sort_title = CASE WHEN excluded.nfo_id IS NOT NULL OR {table}.nfo_id IS NULL
                         THEN excluded.sort_title ELSE {table}.sort_title END,
            year = coalesce(excluded.year, {table}.year),
            nfo_id = coalesce(excluded.nfo_id, {table}.nfo_id),
            poster_id = coalesce(excluded.poster_id, {table}.poster_id),
            {extra_cols[2:]} = coalesce(excluded.{extra_cols[2:]}, {table}.{extra_cols[2:]})
            RETURNING id""",
        [key, g.title, sort, g.year, g.nfo_id, g.poster_id, now, extra_val],
    ).fetchone()[0]


def recount(db: Database, show_ids: Iterable[int], movie_ids: Iterable[int]) -> None:
    """Recount the episodes, seasons and versions of these shows and movies; drop empty ones."""
    for sid in show_ids:
        counts = db.execute(
            # Episodes, not files: two versions of S01E01 are one episode.
            "SELECT m.season, count(DISTINCT coalesce(m.episode, -m.file_id)) FROM file_meta m "
            "JOIN files f ON f.id = m.file_id WHERE m.show_id = ? AND f.present = 1 "
            "GROUP BY m.season",
            [sid],
        ).fetchall()
        if not counts:
            db.execute("DELETE FROM shows WHERE id = ?", [sid])
            continue
        db.execute("DELETE FROM seasons WHERE show_id = ? AND season NOT IN "
                   f"({','.join(str(int(s)) for s, _ in counts)})", [sid])  # fmt: skip
        for season, n in counts:
            db.execute(
                "INSERT INTO seasons (show_id, season, episodes) VALUES (?, ?, ?) "
                "ON CONFLICT (show_id, season) DO UPDATE SET episodes = excluded.episodes",
                [sid, season, n],
            )
        db.execute(
            "UPDATE shows SET episodes = ?, seasons = ?, added_at = coalesce((SELECT max("
            "f.first_seen) FROM file_meta m JOIN files f ON f.id = m.file_id WHERE m.show_id = ?),"
            " added_at), frame_media_id = (SELECT f.media_id FROM file_meta m JOIN files f ON "
            "f.id = m.file_id WHERE m.show_id = ? AND f.present = 1 "
            "ORDER BY m.season = 0, m.season, m.episode, f.name LIMIT 1) WHERE id = ?",
            [sum(n for _, n in counts), sum(1 for s, _ in counts if s != 0), sid, sid, sid],
        )
        _genres(db, "show", sid)
    for mid in movie_ids:
        row = db.execute(
            "SELECT count(*), max(m.quality), min(f.first_seen) FROM file_meta m "
            "JOIN files f ON f.id = m.file_id WHERE m.movie_id = ? AND f.present = 1",
            [mid],
        ).fetchone()
        if not row[0]:
            db.execute("DELETE FROM movies WHERE id = ?", [mid])
            continue
        db.execute(
            "UPDATE movies SET versions = ?, quality = ?, added_at = ?, best_media_id = (SELECT "
            "f.media_id FROM file_meta m JOIN files f ON f.id = m.file_id WHERE m.movie_id = ? "
            "AND f.present = 1 ORDER BY m.quality DESC, f.id LIMIT 1) WHERE id = ?",
            [row[0], row[1] or 0, row[2], mid, mid],
        )
        _genres(db, "movie", mid)


def _genres(db: Database, kind: str, title_id: int) -> None:
    """Write a show's or movie's genres (show_genres, movie_genres) from its .nfo."""
    table, group = f"{kind}_genres", f"{kind}s"
    db.execute(f"DELETE FROM {table} WHERE {kind}_id = ?", [title_id])
    db.execute(
        f"INSERT OR IGNORE INTO {table} (genre, {kind}_id) SELECT trim(g.value), t.id "
        f"FROM {group} t JOIN nfo n ON n.sidecar_id = t.nfo_id, json_each(n.genres) g "
        "WHERE t.id = ? AND g.type = 'text' AND trim(g.value) != ''",
        [title_id],
    )


def _meaningful(title: str, name: str) -> bool:
    """Return False for a "title" that is only the file's stem or its episode marker."""
    stem = name.rsplit(".", 1)[0]
    key = title_key(title)
    return bool(key) and key != title_key(stem) and not re.fullmatch(r"s?\d+[ex]\d+.*", key)


def _classify(ctx: _Context, row: _Row, shows: dict, movies: dict) -> dict:
    folder = ctx.folders.get(row.folder_id)
    stem = row.name.rsplit(".", 1)[0] if "." in row.name else row.name
    own = ctx.side(row.folder_id, name=stem + ".nfo")
    meta = {
        "file_id": row.id,
        "kind": "other",
        "show": None,
        "movie": None,
        "season": None,
        "episode": None,
        "episode_end": None,
        "absolute": 0,
        "nfo_id": own.id if own else None,
        "art_id": None,
        "quality": analyse(
            width=row.width,
            height=row.height,
            codec=row.codec,
            bitrate=row.bitrate,
            channels=row.channels,
            hdr=row.hdr,
        ).score,
    }
    own_art = _video_art(ctx, row.folder_id, stem)
    poster_id = own_art.get("video:poster")
    art = poster_id or own_art.get("video:thumb")
    season, episode = row.season, row.episode
    if own is not None and own.nfo_kind == "episodedetails":
        season = own.season if own.season is not None else season
        episode = own.episode if own.episode is not None else episode
    is_episode = episode is not None or (own is not None and own.nfo_kind == "episodedetails")
    if own is not None and own.nfo_kind == "movie":
        is_episode = False
    parent = ctx.folders.get(folder.parent_id) if folder and folder.parent_id else None
    if is_episode and folder is not None:
        folder_season = season_of_folder(folder.name) if folder.rel_path else None
        show_folder = parent if folder_season is not None else folder
        if show_folder is not None and not show_folder.rel_path:
            show_folder = None  # the library root is no show's folder
        if season is None:
            meta["absolute"] = int(folder_season is None and episode is not None)
            season = folder_season if folder_season is not None else 1
        tvshow = ctx.side(show_folder.id, name="tvshow.nfo") if show_folder else None
        folder_title = parse_name(show_folder.name).title if show_folder else None
        if tvshow is not None and tvshow.title:
            title = tvshow.title
        elif _meaningful(row.title, row.name):
            title = row.title
        else:
            title = folder_title or row.title
        key = title_key(title)
        group = shows.get(key) or _Group(title)
        shows[key] = group
        if tvshow is not None:
            group.nfo_id = tvshow.id
            group.year = tvshow.year or group.year
            group.sort = tvshow.sort_title or group.sort
            group.title = tvshow.title or group.title
        if show_folder is not None:
            group.year = group.year or parse_name(show_folder.name).year
            p = ctx.side(show_folder.id, role="poster")
            group.poster_id = group.poster_id or (p.id if p else None)
            fa = ctx.side(show_folder.id, role="fanart")
            group.fanart_id = group.fanart_id or (fa.id if fa else None)
            for s in ctx.sides.get(show_folder.id, ()):
                if s.role and s.role.startswith("season:") and s.role.endswith(":poster"):
                    n = int(s.role.split(":")[1])
                    if n >= 0:
                        group.season_posters.setdefault(n, s.id)
        if folder_season is not None:
            p = ctx.side(folder.id, role="poster")
            if p is not None:
                group.season_posters.setdefault(season, p.id)
        meta.update(
            kind="episode",
            show=key,
            season=season,
            episode=episode,
            episode_end=episode_end(row.name, episode),
            art_id=art,
        )
        return meta
    folder_parsed = parse_name(folder.name) if folder and folder.rel_path else None
    movie_nfo = own if own is not None and own.nfo_kind == "movie" else None
    if movie_nfo is None:
        m = ctx.side(row.folder_id, name="movie.nfo")
        movie_nfo = m if m is not None and m.nfo_kind == "movie" else None
    year = row.year or (folder_parsed.year if folder_parsed else None)
    if movie_nfo is None and year is None:
        meta["art_id"] = art
        return meta
    if movie_nfo is not None and movie_nfo.title:
        title, year = movie_nfo.title, movie_nfo.year or year
    elif row.year or folder_parsed is None:
        title = row.title
    else:
        title = folder_parsed.title
    key = f"{title_key(title)}:{year or ''}"
    group = movies.get(key) or _Group(title, year)
    movies[key] = group
    if movie_nfo is not None:
        group.nfo_id = movie_nfo.id
        group.sort = movie_nfo.sort_title or group.sort
        group.rating = movie_nfo.rating if movie_nfo.rating is not None else group.rating
    folder_poster = ctx.side(row.folder_id, role="poster") if folder_parsed else None
    group.poster_id = group.poster_id or poster_id or (folder_poster.id if folder_poster else None)
    meta.update(
        kind="movie",
        movie=key,
        nfo_id=movie_nfo.id if movie_nfo else meta["nfo_id"],
        art_id=poster_id or (folder_poster.id if folder_poster else art),
    )
    return meta


def _video_art(ctx: _Context, folder_id: int, stem: str) -> dict[str, int]:
    """Return role -> sidecar id of the pictures named for this video (`<stem>-poster`, ...)."""
    found: dict[str, int] = {}
    for s in ctx.sides.get(folder_id, ()):
        if s.role and s.role.startswith("video:"):
            base = s.name.rsplit(".", 1)[0]
            m = VIDEO_ART_RE.match(base.encode())
            own = m.group(1).decode() if m and not s.name.lower().endswith(".tbn") else base
            if own == stem:
                found.setdefault(s.role, s.id)
    return found
