"""A show's page and its seasons': the episodes in order, progress and the next one to watch.

The grid pages (Shows, Movies) are services/shows/grid.py. Pictures: a show's, season's or
episode's poster from its folder when it has one, else a frame grab of its first episode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlite_utils import Database

from services.errors import NotFound
from services.shows.grid import Art
from services.shows.grid import art as _art
from services.shows.metadata import Meta, meta

_POSTER = (
    "(SELECT a.key FROM artwork a WHERE a.sidecar_id = {col}), "
    "(SELECT a.width FROM artwork a WHERE a.sidecar_id = {col}), "
    "(SELECT a.height FROM artwork a WHERE a.sidecar_id = {col})"
)


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
    versions: int = 1  # files of this episode (a 4K and a 1080p): it opens choose.best's

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
    out: list[Episode] = []
    seen: dict[tuple, int] = {}
    for r in rows:
        if (r[2], r[3]) in seen and r[3] is not None:
            # Another version of the same episode: it opens the one this browser plays best.
            i = seen[(r[2], r[3])]
            out[i] = replace(out[i], versions=out[i].versions + 1)
            continue
        seen[(r[2], r[3])] = len(out)
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
