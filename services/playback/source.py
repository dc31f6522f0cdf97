"""What a play decision and an encoder need to know about a video: the probe plus a few facts.

The library's probe (services/library/probe.py) records codecs, sizes, bit depth and streams;
playing also needs the H.264/HEVC level, whether the video is interlaced or HDR, its pixel
aspect and its rotation. Those are read here with PyAV from the already-open trusted file (no
decoding: codec parameters only, ~10 ms) and remembered per file version: in this process, and
on disk in the play index when the caller gives its folder (services/playback/playindex.py), so
the other server processes and later runs do not read them again.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from sqlite_utils import Database

from services.errors import NotFound
from services.playback import playindex

log = logging.getLogger(__name__)

HDR = frozenset({16, 18})  # AVCOL_TRC_SMPTE2084 (PQ), AVCOL_TRC_ARIB_STD_B67 (HLG)


@dataclass(frozen=True)
class Track:
    """An audio or subtitle stream of the source."""

    index: int  # the stream's index in the file (what `audio=` and `burn=` name)
    type: str
    codec: str
    channels: int | None
    language: str | None
    title: str | None
    is_default: bool


@dataclass(frozen=True)
class Source:
    """A video as playing sees it. Sizes are as displayed (rotation applied)."""

    media_hash: str
    container: str
    duration: float
    video_index: int | None
    video_codec: str
    profile: str
    bit_depth: int
    level: int  # codec level as FFmpeg reports it (H.264: 41 = 4.1; HEVC: 123 = 4.1); 0 unknown
    width: int
    height: int
    fps: float
    rotation: int  # clockwise degrees
    interlaced: bool
    hdr: bool
    audio: tuple[Track, ...]
    subtitles: tuple[Track, ...]
    version: tuple[int, int] = (0, 0)  # the file's (size, mtime_ns): keys the play index

    @property
    def short_side(self) -> int:
        """Return the height a "720p" label speaks of: the shorter side (portrait videos too)."""
        return min(self.width, self.height)

    def default_audio(self) -> Track | None:
        """Return the audio track a player picks by itself: flagged default, else the first."""
        return next((a for a in self.audio if a.is_default), self.audio[0] if self.audio else None)

    def audio_track(self, index: int) -> Track | None:
        return next((a for a in self.audio if a.index == index), None)

    def subtitle_track(self, index: int) -> Track | None:
        return next((s for s in self.subtitles if s.index == index), None)


@dataclass(frozen=True)
class Extra:
    """The facts the library's probe does not keep."""

    level: int
    interlaced: bool
    hdr: bool


def load(db: Database, media_hash: str, fd: int, version: tuple[int, int],
         index: Path | None = None) -> Source:  # fmt: skip
    """Return the Source of a video whose trusted file is open as `fd`.

    `version` (size, mtime_ns) keys the remembered extra facts; `index` is the play index's
    folder, or None to keep them in this process only. NotFound for a picture or an item that
    has no video stream or duration (nothing to play).
    """
    row = db.execute(
        "SELECT id, kind, probe_status, container, duration, width, height, fps, video_codec, "
        "rotation FROM media WHERE media_hash = ?",
        [media_hash],
    ).fetchone()
    if row is None:
        raise NotFound("no such media")
    media_id, kind, status, container, duration, width, height, fps, vcodec, rotation = row
    if kind != "video" or status != "ok" or not duration or not vcodec or not width:
        raise NotFound("this item has no video to play")
    streams = db.execute(
        "SELECT idx, type, codec, profile, bit_depth, channels, language, title, is_default "
        "FROM streams WHERE media_id = ? ORDER BY idx",
        [media_id],
    ).fetchall()
    video = next((s for s in streams if s[1] == "video"), None)
    extra = _extra(media_hash, version, fd, video[0] if video else -1, index)
    rotation = int(rotation or 0) % 360
    if rotation in (90, 270):
        width, height = height, width
    tracks = [
        Track(s[0], s[1], (s[2] or "").lower(), s[5], s[6], s[7], bool(s[8])) for s in streams
    ]
    return Source(
        media_hash=media_hash,
        container=(container or "").lower(),
        duration=float(duration),
        video_index=video[0] if video else None,
        video_codec=vcodec.lower(),
        profile=(video[3] or "") if video else "",
        bit_depth=int((video[4] if video else None) or 8),
        level=extra.level,
        width=int(width),
        height=int(height or 0),
        fps=float(fps or 25.0),
        rotation=rotation,
        interlaced=extra.interlaced,
        hdr=extra.hdr,
        audio=tuple(t for t in tracks if t.type == "audio"),
        subtitles=tuple(t for t in tracks if t.type == "subtitle"),
        version=version,
    )


def _read_extra(path: str, index: int) -> Extra:
    """Read the facts with PyAV (raises av.FFmpegError, OSError or ValueError)."""
    with av.open(path, "r", timeout=10) as container:
        stream = next((s for s in container.streams if s.index == index), None)
        if stream is None or stream.type != "video":
            return Extra(0, False, False)
        cc = stream.codec_context
        level = int(getattr(cc, "level", 0) or 0)
        # FFmpeg's enums as PyAV gives them: field order 0 unknown, 1 progressive, 2..5
        # interlaced (TT, BB, TB, BT); transfer 16 is PQ (SMPTE 2084), 18 is HLG.
        field_order = int(getattr(cc, "field_order", 0) or 0)
        transfer = int(getattr(cc, "color_trc", 0) or 0)
        return Extra(level=max(0, level), interlaced=field_order >= 2, hdr=transfer in HDR)


_memo: dict[tuple[str, tuple[int, int], int], Extra] = {}  # this process's, by file version


def _extra(media_hash: str, version: tuple[int, int], fd: int, index: int,
           folder: Path | None = None) -> Extra:  # fmt: skip
    """Return the file's extra facts: from this process's memo, the play index, or PyAV."""
    key = (media_hash, version, index)
    found = _memo.get(key)
    if found is not None:
        return found
    try:
        facts = playindex.fact(folder, media_hash, version, f"extra{index}",
                               lambda: asdict(_read_extra(f"/proc/self/fd/{fd}", index)))  # fmt: skip
        try:
            found = Extra(**facts)
        except TypeError:  # a record of another shape
            found = _read_extra(f"/proc/self/fd/{fd}", index)
    except (av.FFmpegError, OSError, ValueError) as exc:  # not remembered: the next play retries
        log.info("media %s: extra facts not read: %s", media_hash, exc)
        return Extra(0, False, False)
    if len(_memo) >= 512:
        _memo.clear()
    _memo[key] = found
    return found


def fraction(value: float) -> Fraction:
    """Return value as a small fraction (frame rates for playlists)."""
    return Fraction(value).limit_denominator(1001)
