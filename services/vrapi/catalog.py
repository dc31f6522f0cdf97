"""The library's sections for the VR players and one video's details.

Sections, in order: Recent, Favourites, each of the user's playlists, VR, then the folders that
hold videos. Every section is cut at `limit` videos and at most `max_folders` folder sections are
listed, so the answer stays small and fast at 100k videos (bench/b15_vrapi.py): each section is
one indexed query that stops after `limit` rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from services.browse import details
from services.errors import NotFound
from services.organize import favorites, markers, metacache, ratings, tags, watchstate
from services.playback import playability
from services.playback.projection import VRProjection
from services.playback.subtitles import tracks as subtitle_tracks
from services.shows import metadata as shows_metadata

LIMIT = 200  # videos per section
MAX_FOLDERS = 50  # folder sections
DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")

# The first present copy of a video: its file name (the title) and folder.
_ENTRY = (
    "SELECT m.media_hash, f.name, m.duration FROM media m "
    "JOIN files f ON f.id = (SELECT id FROM files WHERE media_id = m.id AND present = 1 "
    "ORDER BY id LIMIT 1) "
)


@dataclass(frozen=True)
class Entry:
    """One video in a section."""

    media_hash: str
    title: str
    duration: float  # seconds, 0 when unknown


@dataclass(frozen=True)
class Section:
    """A named list of videos."""

    name: str
    entries: tuple[Entry, ...]


def title_of(name: str) -> str:
    """Return a file name without its extension."""
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def _entries(db: Database, sql: str, params: Sequence[object]) -> tuple[Entry, ...]:
    return tuple(
        Entry(h, title_of(name), float(d or 0.0)) for h, name, d in db.execute(sql, params)
    )


def sections(
    db: Database, user_id: int, *, limit: int = LIMIT, max_folders: int = MAX_FOLDERS
) -> list[Section]:
    """Return the user's sections (empty ones left out)."""
    video = "m.kind = 'video'"
    out = [
        Section(
            "Recent",
            _entries(db, _ENTRY + f"WHERE {video} ORDER BY m.added_at DESC LIMIT ?", [limit]),
        ),
        Section(
            "Favourites",
            _entries(
                db,
                _ENTRY + f"JOIN favorites fv ON fv.media_id = m.id WHERE fv.user_id = ? "
                f"AND {video} ORDER BY fv.added_at DESC LIMIT ?",
                [user_id, limit],
            ),
        ),
    ]
    for pid, name in db.execute(
        "SELECT id, name FROM playlists WHERE user_id = ? ORDER BY name COLLATE NOCASE, id",
        [user_id],
    ).fetchall():
        out.append(
            Section(
                f"Playlist: {name}",
                _entries(
                    db,
                    _ENTRY + f"JOIN playlist_items pi ON pi.media_id = m.id "
                    f"WHERE pi.playlist_id = ? AND {video} ORDER BY pi.position LIMIT ?",
                    [pid, limit],
                ),
            )
        )
    out.append(
        Section(
            "VR",
            _entries(
                db,
                _ENTRY + f"WHERE {video} AND EXISTS (SELECT 1 FROM files vf JOIN projections p "
                "ON p.file_id = vf.id WHERE vf.media_id = m.id AND vf.present = 1 "
                "AND p.type != 'flat') ORDER BY m.added_at DESC LIMIT ?",
                [limit],
            ),
        )
    )
    folders = db.execute(
        "SELECT fo.id, fo.rel_path, l.name FROM folders fo JOIN libraries l ON l.id = fo.library_id "
        "WHERE fo.present = 1 AND EXISTS (SELECT 1 FROM files f JOIN media m ON m.id = f.media_id "
        "WHERE f.folder_id = fo.id AND f.present = 1 AND m.kind = 'video') "
        "ORDER BY fo.library_id, fo.rel_path LIMIT ?",
        [max_folders],
    ).fetchall()
    for folder_id, rel_path, library in folders:
        rows = db.execute(
            "SELECT m.media_hash, f.name, m.duration FROM files f JOIN media m ON m.id = f.media_id "
            "WHERE f.folder_id = ? AND f.present = 1 AND m.kind = 'video' "
            "ORDER BY f.name COLLATE NOCASE, f.id LIMIT ?",
            [folder_id, limit],
        ).fetchall()
        entries = tuple(Entry(h, title_of(n), float(d or 0.0)) for h, n, d in rows)
        out.append(Section(f"Folder: {rel_path or library}", entries))
    return [s for s in out if s.entries]


@dataclass(frozen=True)
class Subtitle:
    """A text subtitle track a player can load as WebVTT."""

    key: str
    name: str
    language: str


@dataclass(frozen=True)
class Video:
    """Everything the players' video answers say about one video, for one user."""

    item: details.Item
    vr: VRProjection
    plays_directly: bool  # the original plays in a headset's browser engine as it is
    is_favorite: bool
    rating: int | None  # the user's 1–5 stars
    tags: tuple[str, ...]
    markers: tuple[markers.Marker, ...]
    subtitles: tuple[Subtitle, ...]
    position: float  # the user's resume position in seconds (0: from the start)
    description: str = ""  # the plot from the file's, its movie's or its show's .nfo

    @property
    def title(self) -> str:
        return title_of(self.item.name)

    @property
    def duration(self) -> float:
        return float(self.item.duration or 0.0)

    @property
    def date_added(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self.item.added_at))

    @property
    def date_released(self) -> str | None:
        """Return the day the video was taken as YYYY-MM-DD, None when not known to the day
        (HereSphere crashes on 'YYYY' or 'YYYY-MM')."""
        return full_date(self.item.taken_at)


def full_date(value: str | None) -> str | None:
    """Return a complete YYYY-MM-DD date from the start of `value`, else None."""
    m = DATE.match(value or "")
    if not m:
        return None
    y, mo, d = (int(x) for x in m.groups())
    try:
        time.strptime(f"{y:04d}-{mo:02d}-{d:02d}", "%Y-%m-%d")
    except ValueError:
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


def video(db: Database, cache: metacache.MetaCache, media_hash: str, user_id: int) -> Video:
    """Return one video's details for the user; NotFound when unknown, gone or not a video."""
    item = details.item(db, media_hash)
    if item.kind != "video":
        raise NotFound("not a video")
    subs = tuple(
        Subtitle(t.key, t.label, t.language or "")
        for t in subtitle_tracks.list_tracks(db, media_hash).subtitles
        if t.kind == "text" and t.usable
    )
    stars = ratings.summary(db, cache, media_hash, user_id).your_rating
    return Video(
        item=item,
        vr=item.vr,
        plays_directly=playability.can_play(item, item.streams).ok,
        is_favorite=favorites.is_favorite(db, cache, item.media_id, user_id),
        rating=stars,
        tags=tags.tags_of(db, cache, item.media_id),
        markers=tuple(markers.list_for(db, user_id, item.media_id)),
        subtitles=subs,
        position=watchstate.get(db, user_id, item.media_id).position,
        description=shows_metadata.description(db, item.file_id) or "",
    )
