"""What a file is — an episode, a film or neither — and which show or movie it joins.

An episode is a video whose name numbers it (S01E02, 1x02, EP12, "Show - 12") or whose own
`<name>.nfo` is an <episodedetails>. Its season comes from the name, else its .nfo, else a
"Season 2" / "Specials" folder (specials are season 0), else 1; a number without a season
(EP12) is absolute. Its show is the tvshow.nfo's title in the show folder (the folder above a
season folder, or its own), else the show named in the file name, else the show folder's name:
a show with the same name in two folders or two libraries is one show. A film is a video that
is not an episode and has a year (in its name or its folder's name, "Heat (1995)/heat.mkv") or
a movie .nfo; files of the same title and year are versions of one movie.

Context holds the folders and the sidecars (.nfo, pictures) beside them that this reads,
loaded in chunks by services/shows/grouping.py, which writes what `classify` returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlite_utils import Database

from services.library.filenames import parse_name
from services.library.sidecars import VIDEO_ART_RE
from services.shows.names import episode_end, season_of_folder, title_key
from services.shows.quality import HDR_SQL, analyse

CHUNK = 400  # folders per query


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
class Group:
    title: str
    year: int | None = None
    nfo_id: int | None = None
    poster_id: int | None = None
    fanart_id: int | None = None
    sort: str | None = None
    rating: float | None = None
    season_posters: dict[int, int] = field(default_factory=dict)


class Context:
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
class Row:
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


FILES_SQL = f"""
    SELECT f.id, f.name, f.folder_id, f.first_seen, coalesce(p.title, f.name), p.year, p.season,
           p.episode, {HDR_SQL}, m.width, m.height, m.video_codec, m.bitrate,
           (SELECT max(channels) FROM streams s WHERE s.media_id = m.id AND s.type = 'audio'),
           (SELECT max(bit_depth) FROM streams s WHERE s.media_id = m.id AND s.type = 'video')
    FROM files f JOIN media m ON m.id = f.media_id LEFT JOIN parses p ON p.file_id = f.id
    WHERE f.folder_id IN ({{marks}}) AND f.present = 1 AND m.kind = 'video'"""


def _meaningful(title: str, name: str) -> bool:
    """Return False for a "title" that is only the file's stem or its episode marker."""
    stem = name.rsplit(".", 1)[0]
    key = title_key(title)
    return bool(key) and key != title_key(stem) and not re.fullmatch(r"s?\d+[ex]\d+.*", key)


def classify(ctx: Context, row: Row, shows: dict, movies: dict) -> dict:
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
        group = shows.get(key) or Group(title)
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
    group = movies.get(key) or Group(title, year)
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


def _video_art(ctx: Context, folder_id: int, stem: str) -> dict[str, int]:
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
