"""A video's subtitle and audio tracks as the player and the watch page list them.

Subtitle tracks come from two places: embedded streams (as probed, services.library.probe) and
sidecar files (services.library.subtitle_files). Each has a key that stays put while its source does:
`e<stream index>` for an embedded stream, `s<row id>` for a sidecar. Text tracks are served as
WebVTT; picture tracks (PGS, VobSub, DVB) can only be burned into the picture by a transcode.

A sidecar is read for the first time when its video's tracks are listed: one that cannot be
decoded or parsed is recorded as failed with the reason (and listed as such), never retried
until its size or modification time changes.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.errors import NotFound
from services.library import languages
from services.playback.subtitles.convert import MAX_BYTES, Converted, SubtitleError, convert_bytes

log = logging.getLogger(__name__)

TEXT_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
PICTURE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub"})
CODEC_NAMES = {
    "subrip": "SubRip",
    "srt": "SubRip",
    "ass": "ASS",
    "ssa": "SSA",
    "mov_text": "MP4 text",
    "webvtt": "WebVTT",
    "text": "text",
    "hdmv_pgs_subtitle": "PGS",
    "dvd_subtitle": "VobSub",
    "dvb_subtitle": "DVB",
    "xsub": "XSUB",
    "vtt": "WebVTT",
    "sub": "MicroDVD",
}


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle track of a video."""

    key: str  # e3 (embedded stream 3) | s12 (sidecar row 12)
    source: str  # embedded | sidecar
    kind: str  # text | picture
    codec: str
    language: str | None  # BCP 47
    title: str | None
    forced: bool
    sdh: bool
    default: bool
    status: str  # ok | new | failed
    reason: str | None
    stream_index: int | None  # embedded only
    path: str | None = None  # sidecar only: relative to its library, for display

    @property
    def language_name(self) -> str | None:
        return languages.name(self.language)

    @property
    def label(self) -> str:
        """Return what the menu shows: `English (SDH) — Commentary`, `German, forced`."""
        name = self.language_name or (self.title if self.title else "Unknown language")
        flags = [f for f, on in (("forced", self.forced), ("SDH", self.sdh)) if on]
        text = name + (f" ({', '.join(flags)})" if flags else "")
        if self.title and self.title != name and self.language_name:
            text += f" — {self.title}"
        return text

    @property
    def usable(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a video."""

    index: int
    codec: str | None
    channels: int | None
    language: str | None  # BCP 47
    title: str | None
    default: bool

    @property
    def label(self) -> str:
        name = languages.name(self.language) or "Unknown language"
        layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(self.channels or 0)
        parts = [p for p in (self.codec, layout) if p]  # codec as the Video row names it: h264, aac
        text = name + (f" · {' '.join(parts)}" if parts else "")
        return text + (f" — {self.title}" if self.title else "")


@dataclass(frozen=True)
class Tracks:
    """Everything the player's menu lists for one video."""

    media_id: int
    media_hash: str
    subtitles: tuple[SubtitleTrack, ...]
    audio: tuple[AudioTrack, ...]


def media_row(db: Database, media_hash: str) -> tuple[int, float | None]:
    """Return (media id, fps) of a media item; NotFound when unknown."""
    row = db.execute("SELECT id, fps FROM media WHERE media_hash = ?", [media_hash]).fetchone()
    if row is None:
        raise NotFound("no such media")
    return row[0], row[1]


def _flag_words(title: str | None) -> tuple[bool, bool]:
    """Return (forced, sdh) as a stream's title says them ("Forced", "English SDH")."""
    words = set((title or "").lower().replace("(", " ").replace(")", " ").split())
    return bool(words & {"forced", "foreign"}), bool(words & {"sdh", "cc", "hi"})


def embedded(db: Database, media_id: int) -> list[SubtitleTrack]:
    """Return the subtitle streams of a media item, in stream order."""
    out = []
    for idx, codec, language, title, default, forced, sdh in db.execute(
        "SELECT idx, codec, language, title, is_default, forced, hearing_impaired FROM streams "
        "WHERE media_id = ? AND type = 'subtitle' ORDER BY idx",
        [media_id],
    ):
        t_forced, t_sdh = _flag_words(title)
        if codec in TEXT_CODECS:
            kind, status, reason = "text", "ok", None
        elif codec in PICTURE_CODECS:
            kind, status, reason = "picture", "ok", None
        else:
            kind, status, reason = (
                "text",
                "failed",
                f"{codec or 'unknown'} subtitles are not supported",
            )
        out.append(
            SubtitleTrack(
                key=f"e{idx}",
                source="embedded",
                kind=kind,
                codec=codec or "unknown",
                language=languages.tag(language),
                title=title,
                forced=bool(forced) or t_forced,
                sdh=bool(sdh) or t_sdh,
                default=bool(default),
                status=status,
                reason=reason,
                stream_index=idx,
            )
        )
    return out


def sidecar_rows(db: Database, media_id: int) -> list[tuple]:
    return db.execute(
        "SELECT s.id, s.format, s.language, s.title, s.forced, s.sdh, s.is_default, s.status, "
        "s.reason, s.path, l.root, s.size, s.mtime_ns FROM subtitle_files s "
        "JOIN libraries l ON l.id = s.library_id WHERE s.media_id = ? ORDER BY s.path, s.id",
        [media_id],
    ).fetchall()


def list_tracks(db: Database, media_hash: str, *, check: bool = True) -> Tracks:
    """Return a video's subtitle and audio tracks; read sidecars never read before (`check`)."""
    media_id, fps = media_row(db, media_hash)
    subs = embedded(db, media_id)
    rows = sidecar_rows(db, media_id)
    if check and any(r[7] == "new" for r in rows):
        for r in rows:
            if r[7] == "new":
                _check_sidecar(db, r, fps)
        rows = sidecar_rows(db, media_id)
    for sid, fmt, language, title, forced, sdh, default, status, reason, path, *_ in rows:
        subs.append(
            SubtitleTrack(
                key=f"s{sid}",
                source="sidecar",
                kind="text",
                codec=fmt,
                language=language,
                title=title,
                forced=bool(forced),
                sdh=bool(sdh),
                default=bool(default),
                status=status,
                reason=reason,
                stream_index=None,
                path=bytes(path).decode("utf-8", "replace"),
            )
        )
    audio = tuple(
        AudioTrack(idx, codec, channels, languages.tag(language), title, bool(default))
        for idx, codec, channels, language, title, default in db.execute(
            "SELECT idx, codec, channels, language, title, is_default FROM streams "
            "WHERE media_id = ? AND type = 'audio' ORDER BY idx",
            [media_id],
        )
    )
    return Tracks(media_id, media_hash, tuple(subs), audio)


def check_new(db: Database, limit: int = 2000) -> int:
    """Read the subtitle files found since the last look (after a scan); return how many."""
    rows = db.execute(
        "SELECT s.id, s.format, s.language, s.title, s.forced, s.sdh, s.is_default, s.status, "
        "s.reason, s.path, l.root, s.size, s.mtime_ns, m.fps FROM subtitle_files s "
        "JOIN libraries l ON l.id = s.library_id JOIN media m ON m.id = s.media_id "
        "WHERE s.status = 'new' LIMIT ?",
        [limit],
    ).fetchall()
    for row in rows:
        _check_sidecar(db, row[:13], row[13])
    return len(rows)


def _read_sidecar(root: str, path: bytes) -> bytes:
    """Read a sidecar file inside its library: a regular file, not leaving the root, capped."""
    root_b = os.fsencode(root).rstrip(b"/")
    full = root_b + b"/" + path
    real = os.path.realpath(full)
    if not real.startswith(root_b + b"/"):
        raise SubtitleError("the file leads outside the library")
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SubtitleError("not a regular file")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SubtitleError(f"too large for a subtitle file (at most {MAX_BYTES // 2**20} MiB)")
    return data


def _convert_row(row: tuple, fps: float | None) -> Converted:
    sid, fmt, *_rest = row
    path, root = bytes(row[9]), row[10]
    try:
        data = _read_sidecar(root, path)
    except FileNotFoundError:
        raise NotFound("the subtitle file is gone") from None
    except OSError as exc:
        raise SubtitleError(f"cannot read: {exc.strerror or exc}") from None
    return convert_bytes(data, fmt, fps=fps, language=row[2])


def _check_sidecar(db: Database, row: tuple, fps: float | None) -> None:
    """Read a sidecar once and record ok (encoding, cue count) or failed (reason)."""
    try:
        done = _convert_row(row, fps)
        values = ["ok", None, done.encoding, done.cues]
    except NotFound:
        return  # gone: the next scan of its folder drops it
    except SubtitleError as exc:
        values = ["failed", str(exc), None, None]
        log.warning(
            "subtitle file %s: %s",
            os.path.join(row[10], bytes(row[9]).decode("utf-8", "replace")),
            exc,
        )
    with dbmod.write(db):
        db.execute(
            "UPDATE subtitle_files SET status = ?, reason = ?, encoding = ?, cues = ? "
            "WHERE id = ? AND size = ? AND mtime_ns = ?",
            [*values, row[0], row[11], row[12]],
        )


def sidecar_vtt(db: Database, media_hash: str, sidecar_id: int) -> tuple[str, str]:
    """Return (WebVTT, etag) of a sidecar of this media; NotFound, or SubtitleError (recorded)."""
    media_id, fps = media_row(db, media_hash)
    row = next((r for r in sidecar_rows(db, media_id) if r[0] == sidecar_id), None)
    if row is None:
        raise NotFound("no such subtitle track")
    if row[7] == "failed":
        raise SubtitleError(row[8] or "cannot be read")
    try:
        done = _convert_row(row, fps)
    except SubtitleError:
        _check_sidecar(db, row, fps)
        raise
    if row[7] == "new":
        _check_sidecar(db, row, fps)
    return done.vtt, f'"s{sidecar_id}-{row[11]}-{row[12]}"'
