"""One media item as the watch page shows it: probe facts, its file, parsed name, streams."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlite_utils import Database

from services.browse.cards import display_title, valid_hash
from services.errors import NotFound
from services.playback import projection
from services.playback.projection import VRProjection


@dataclass(frozen=True)
class Stream:
    """One stream of a media file, as probed."""

    idx: int
    type: str
    codec: str | None
    profile: str | None
    bit_depth: int | None
    width: int | None
    height: int | None
    channels: int | None
    language: str | None
    title: str | None


@dataclass(frozen=True)
class Item:
    """A media item with the file it is shown from (the first present copy)."""

    media_id: int
    media_hash: str
    kind: str
    size: int
    probe_status: str
    container: str | None
    duration: float | None
    width: int | None
    height: int | None
    fps: float | None
    bitrate: int | None
    video_codec: str | None
    audio_codec: str | None
    taken_at: str | None
    added_at: float
    file_id: int
    folder_id: int
    library_id: int
    name: str
    path: str  # for display: library root + path, invalid UTF-8 shown as U+FFFD
    folder_rel_path: str
    title: str
    series_title: str | None
    season: int | None
    episode: int | None
    quality: str | None
    projection: str | None
    stereo: str | None
    copies: int
    streams: tuple[Stream, ...]
    vr: VRProjection = projection.FLAT  # the file's projection (services/playback/projection.py)

    @property
    def resolution_label(self) -> str:
        """Return '6K'-style for VR (one eye's size, as VR players name it), else ''."""
        return projection.resolution_label(self.vr, self.width, self.height)

    @property
    def eye_size(self) -> tuple[int, int] | None:
        """Return one eye's picture size of a stereo video, None for mono or unknown size."""
        if self.vr.stereo == "mono" or not self.width or not self.height:
            return None
        return projection.eye_size(self.vr, self.width, self.height)


def item(db: Database, media_hash: str) -> Item:
    """Return the media item with this hash; NotFound when unknown or no copy is present."""
    if not valid_hash(media_hash):
        raise NotFound("no such media")
    row = db.execute(
        "SELECT m.id, m.media_hash, m.kind, m.size, m.probe_status, m.container, m.duration, "
        "m.width, m.height, m.fps, m.bitrate, m.video_codec, m.audio_codec, m.taken_at, "
        "m.added_at, f.id, f.folder_id, f.library_id, f.name, l.root, f.path, fo.rel_path, "
        "p.title, p.year, p.season, p.episode, p.quality, p.projection, p.stereo, "
        "(SELECT count(*) FROM files c WHERE c.media_id = m.id AND c.present = 1), "
        "pj.type, pj.stereo, pj.eye_swap, pj.lens, pj.source "
        "FROM media m JOIN files f ON f.id = "
        "  (SELECT min(x.id) FROM files x WHERE x.media_id = m.id AND x.present = 1) "
        "JOIN libraries l ON l.id = f.library_id JOIN folders fo ON fo.id = f.folder_id "
        "LEFT JOIN parses p ON p.file_id = f.id LEFT JOIN projections pj ON pj.file_id = f.id "
        "WHERE m.media_hash = ?",
        [media_hash],
    ).fetchone()
    if row is None:
        raise NotFound("no such media, or none of its files is present")
    streams = db.execute(
        "SELECT idx, type, codec, profile, bit_depth, width, height, channels, language, title "
        "FROM streams WHERE media_id = ? ORDER BY idx",
        [row[0]],
    ).fetchall()
    path = os.path.join(row[19], bytes(row[20]).decode("utf-8", "replace"))
    return Item(
        *row[:19],
        path=path,
        folder_rel_path=row[21],
        title=display_title(row[18], row[22], row[23], row[24], row[25]),
        series_title=row[22],
        season=row[24],
        episode=row[25],
        quality=row[26],
        projection=row[27],
        stereo=row[28],
        copies=row[29],
        streams=tuple(Stream(*s) for s in streams),
        vr=VRProjection(row[30], row[31], bool(row[32]), row[33], row[34])
        if row[30] is not None
        else projection.FLAT,
    )
