"""Episode order for the player and the home page, and a title's versions for the watch page.

Up next on an episode's watch page is the next episode of its show (S01E09 → S01E10 → S02E01),
not the next file name of its folder; "Continue watching" offers the next episode of a show
whose last episode the user finished. A film or an episode held in several files (a 4K and a
1080p) lists its versions, best first, with their quality.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card
from services.shows.metadata import Meta
from services.shows.metadata import meta as read_meta
from services.shows.quality import HDR_SQL, Quality, analyse

RECENT_FINISHED = 30  # finished episodes looked at for "Continue watching"


@dataclass(frozen=True)
class Place:
    """Where a file sits among shows and movies."""

    kind: str  # episode | movie | other
    show_id: int | None
    show_title: str | None
    movie_id: int | None
    season: int | None
    episode: int | None
    episode_end: int | None
    nfo_id: int | None
    show_nfo_id: int | None
    movie_nfo_id: int | None

    @property
    def label(self) -> str:
        if self.kind != "episode" or self.season is None:
            return ""
        if self.episode is None:
            return "Specials" if self.season == 0 else f"Season {self.season}"
        end = f"-E{self.episode_end:02d}" if self.episode_end else ""
        return f"S{self.season:02d}E{self.episode:02d}{end}"


def place(db: Database, file_id: int) -> Place | None:
    """Return where a file belongs (its show or movie), or None when it was never grouped."""
    r = db.execute(
        "SELECT fm.kind, fm.show_id, s.title, fm.movie_id, fm.season, fm.episode, "
        "fm.episode_end, fm.nfo_id, s.nfo_id, mv.nfo_id FROM file_meta fm "
        "LEFT JOIN shows s ON s.id = fm.show_id LEFT JOIN movies mv ON mv.id = fm.movie_id "
        "WHERE fm.file_id = ?",
        [file_id],
    ).fetchone()
    return Place(*r) if r else None


def _cards(db: Database, file_ids: list[int], user_id: int) -> dict[int, Card]:
    if not file_ids:
        return {}
    marks = ",".join(str(int(i)) for i in file_ids)
    rows = db.execute(
        f"SELECT {CARD_COLUMNS} FROM files f {CARD_JOINS} WHERE f.id IN ({marks})",
        {"user": user_id},
    ).fetchall()
    return {r[0]: card(r) for r in rows}


_ORDER = "fm.season = 0, fm.season, fm.episode, f.name"


def neighbours(
    db: Database, file_id: int, show_id: int, user_id: int
) -> tuple[Card | None, Card | None]:
    """Return the previous and next episodes of a show around this one, in episode order."""
    rows = db.execute(
        "SELECT f.id, fm.season, fm.episode FROM file_meta fm INDEXED BY file_meta_show "
        "JOIN files f ON f.id = fm.file_id WHERE fm.show_id = ? AND f.present = 1 "
        f"ORDER BY {_ORDER}",
        [show_id],
    ).fetchall()
    # One entry per episode (versions of it share the place of the one playing).
    order: list[int] = []
    slots: dict[tuple, int] = {}
    for fid, season, ep in rows:
        slot = (season, ep) if ep is not None else ("file", fid)
        if slot in slots:
            if fid == file_id:
                order[slots[slot]] = fid
            continue
        slots[slot] = len(order)
        order.append(fid)
    if file_id not in order:
        return None, None
    i = order.index(file_id)
    prev_id = order[i - 1] if i > 0 else None
    next_id = order[i + 1] if i + 1 < len(order) else None
    cards = _cards(db, [x for x in (prev_id, next_id) if x], user_id)
    return cards.get(prev_id), cards.get(next_id)


def versions_of(db: Database, media_hash: str) -> int:
    """Return how many present files hold the episode or film this media is one version of."""
    row = db.execute(
        "SELECT fm.kind, fm.show_id, fm.season, fm.episode, fm.movie_id FROM media m "
        "JOIN files f ON f.media_id = m.id AND f.present = 1 JOIN file_meta fm ON fm.file_id = f.id "
        "WHERE m.media_hash = ? LIMIT 1",
        [media_hash],
    ).fetchone()
    if row is None or row[0] == "other" or (row[0] == "episode" and row[3] is None):
        return 1
    where, args = (
        ("fm.movie_id = ?", [row[4]])
        if row[0] == "movie"
        else ("fm.show_id = ? AND fm.season = ? AND fm.episode = ?", list(row[1:4]))
    )
    return db.execute(
        f"SELECT count(DISTINCT f.media_id) FROM file_meta fm JOIN files f ON f.id = fm.file_id "
        f"WHERE {where} AND f.present = 1",
        args,
    ).fetchone()[0]


def next_episodes(db: Database, user_id: int, limit: int = 12) -> list[tuple[float, Card]]:
    """Return (when the previous one was finished, card) of the next episodes to offer.

    For each show whose most recently played episode the user finished, the first unwatched
    episode after it in episode order, when there is one.
    """
    rows = db.execute(
        "SELECT w.last_played, fm.show_id, fm.season, fm.episode, f.name FROM watch_state w "
        "INDEXED BY watch_state_recent JOIN files f ON f.media_id = w.media_id AND f.present = 1 "
        "JOIN file_meta fm ON fm.file_id = f.id AND fm.show_id IS NOT NULL "
        "WHERE w.user_id = ? AND w.last_played IS NOT NULL ORDER BY w.last_played DESC LIMIT ?",
        [user_id, RECENT_FINISHED],
    ).fetchall()
    latest: dict[int, tuple] = {}
    for row in rows:
        latest.setdefault(row[1], row)
    found: list[tuple[float, int]] = []
    for when, show_id, season, episode, name in latest.values():
        watched = db.execute(
            "SELECT w.watched FROM watch_state w JOIN files f ON f.media_id = w.media_id "
            "JOIN file_meta fm ON fm.file_id = f.id WHERE w.user_id = ? AND fm.show_id = ? "
            "AND fm.season IS ? AND fm.episode IS ? AND f.name = ?",
            [user_id, show_id, season, episode, name],
        ).fetchone()
        if not watched or not watched[0] or season == 0:
            continue
        nxt = db.execute(
            "SELECT f.id FROM file_meta fm INDEXED BY file_meta_show JOIN files f ON f.id = "
            "fm.file_id LEFT JOIN watch_state w ON w.user_id = :user AND w.media_id = f.media_id "
            "WHERE fm.show_id = :show AND f.present = 1 AND fm.season != 0 "
            "AND (fm.season, coalesce(fm.episode, -1), f.name) > (:s, coalesce(:e, -1), :n) "
            "AND coalesce(w.watched, 0) = 0 AND coalesce(w.position, 0) = 0 "
            "ORDER BY fm.season, fm.episode, f.name LIMIT 1",
            {"user": user_id, "show": show_id, "s": season, "e": episode, "n": name},
        ).fetchone()
        if nxt:
            found.append((when, nxt[0]))
        if len(found) >= limit:
            break
    cards = _cards(db, [fid for _, fid in found], user_id)
    return [(when, cards[fid]) for when, fid in found if fid in cards]


def continue_watching(db: Database, user_id: int, begun: list[Card], limit: int = 12) -> list[Card]:
    """Return "Continue watching": the begun videos, with the next episodes merged in by time."""
    nexts = next_episodes(db, user_id, limit)
    if not nexts:
        return begun
    when = dict(
        db.execute(
            "SELECT m.media_hash, w.last_played FROM watch_state w JOIN media m ON m.id = "
            f"w.media_id WHERE w.user_id = ? AND m.media_hash IN ({','.join('?' * len(begun))})",
            [user_id, *(c.media_hash for c in begun)],
        ).fetchall()
    ) if begun else {}  # fmt: skip
    merged = [(when.get(c.media_hash) or 0, c) for c in begun]
    have = {c.media_hash for c in begun}
    merged += [(t, c) for t, c in nexts if c.media_hash not in have]
    merged.sort(key=lambda x: -x[0])
    return [c for _, c in merged[:limit]]


@dataclass(frozen=True)
class Version:
    """One file of a title held in several (with what services/playback needs to judge it)."""

    media_hash: str
    name: str
    quality: Quality
    container: str | None
    audio_codec: str | None
    probe_status: str
    size: int
    kind: str = "video"

    @property
    def video_codec(self) -> str | None:
        return self.quality.codec

    @property
    def label(self) -> str:
        """Return "4K HDR10 · hevc · 5.1" — what tells versions apart."""
        q = self.quality
        parts = [" ".join(x for x in (q.resolution, q.hdr) if x), q.codec or "", q.audio]
        return " · ".join(p for p in parts if p)


def versions(db: Database, file_id: int) -> list[Version]:
    """Return every present version of this file's movie or episode, best first (itself too)."""
    r = db.execute(
        "SELECT kind, show_id, movie_id, season, episode FROM file_meta WHERE file_id = ?",
        [file_id],
    ).fetchone()
    if r is None or r[0] == "other":
        return []
    kind, show_id, movie_id, season, episode = r
    if kind == "movie":
        return movie_versions(db, movie_id)
    if episode is None:
        return []
    where = "fm.show_id = ? AND fm.season = ? AND fm.episode = ?"
    return _versions(db, where, [show_id, season, episode])


def movie_versions(db: Database, movie_id: int) -> list[Version]:
    """Return a movie's present versions, best first."""
    return _versions(db, "fm.movie_id = ?", [movie_id])


def _versions(db: Database, where: str, args: list) -> list[Version]:
    rows = db.execute(
        "SELECT m.media_hash, f.name, m.width, m.height, m.video_codec, m.bitrate, "
        "(SELECT max(channels) FROM streams s WHERE s.media_id = m.id AND s.type = 'audio'), "
        f"{HDR_SQL}, m.container, m.audio_codec, m.probe_status, m.size FROM file_meta fm "
        "JOIN files f ON f.id = fm.file_id JOIN media m ON m.id = f.media_id "
        f"LEFT JOIN parses p ON p.file_id = f.id WHERE {where} AND f.present = 1 "
        "ORDER BY fm.quality DESC, f.id",
        args,
    ).fetchall()
    out, seen = [], set()
    for h, name, w, hgt, codec, rate, ch, hdr, container, audio, status, size in rows:
        if h in seen:
            continue
        seen.add(h)
        q = analyse(width=w, height=hgt, codec=codec, bitrate=rate, channels=ch, hdr=hdr)
        out.append(Version(h, name, q, container, audio, status, size))
    return out


@dataclass(frozen=True)
class WatchInfo:
    """What the watch page shows of a file's show or movie: place, .nfo, quality, versions."""

    place: Place | None
    meta: Meta | None  # the file's own .nfo, else its movie's or show's
    quality: Quality
    versions: list[Version]


def watch_info(db: Database, item) -> WatchInfo:  # noqa: ANN001 - a browse.details.Item
    """Return the show/movie facts, quality and versions of the watch page's item."""
    where = place(db, item.file_id)
    nfo_id = None
    if where is not None:
        nfo_id = where.nfo_id or where.movie_nfo_id or where.show_nfo_id
    hdr = db.execute(
        f"SELECT {HDR_SQL} FROM files f JOIN media m ON m.id = f.media_id "
        "LEFT JOIN parses p ON p.file_id = f.id WHERE f.id = ?",
        [item.file_id],
    ).fetchone()
    channels = max((s.channels or 0 for s in item.streams if s.type == "audio"), default=0)
    quality = analyse(
        width=item.width,
        height=item.height,
        codec=item.video_codec,
        bitrate=item.bitrate,
        channels=channels or None,
        hdr=hdr[0] if hdr else None,
    )
    found = versions(db, item.file_id)
    return WatchInfo(where, read_meta(db, nfo_id), quality, found if len(found) > 1 else [])
