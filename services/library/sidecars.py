"""Sidecar files: what lies beside the videos and describes them, without being media itself.

Kodi, Jellyfin, tinyMediaManager, Radarr and Sonarr keep metadata next to the files: `.nfo`
(XML), artwork (`poster.jpg`, `folder.jpg`, `fanart.jpg`, `season01-poster.jpg`,
`<video>-poster.jpg`, `<video>-thumb.jpg`) and subtitles (`.srt`, `.vtt`, `.ass`). The walk
reports them per folder beside the media entries (they count in the folder's digest, so an edited
`.nfo` makes its folder change), the scan writer keeps the `sidecars` table in step with them, and
the domain that understands a kind reads the rows whose status is 'pending' (services/shows for
nfo and artwork; subtitles are listed for whoever serves them). Nothing here opens a sidecar.

An artwork picture is a sidecar, not a picture of the library: a fixed name (poster, folder,
cover, fanart, backdrop, banner, clearlogo, ...), a season's (`season01-poster`,
`season-specials-poster`), or `<name>-poster` / `<name>-thumb` / `<name>-fanart` beside a
video called `<name>` (so a holiday photo named `beach-thumb.jpg` in a photo folder stays one).
"""

from __future__ import annotations

import re

from sqlite_utils import Database

NFO_EXTENSIONS = frozenset({b".nfo"})
SUBTITLE_EXTENSIONS = frozenset({b".srt", b".vtt", b".ass", b".ssa", b".sub"})  # .sub: MicroDVD
ARTWORK_EXTENSIONS = frozenset({b".jpg", b".jpeg", b".png", b".webp", b".tbn"})
TEXT_EXTENSIONS = NFO_EXTENSIONS | SUBTITLE_EXTENSIONS

# Folder-wide artwork names (Kodi and Jellyfin), stem -> the role it plays.
FOLDER_ART = {
    b"poster": "poster",
    b"folder": "poster",
    b"cover": "poster",
    b"default": "poster",
    b"movie": "poster",
    b"show": "poster",
    b"fanart": "fanart",
    b"backdrop": "fanart",
    b"background": "fanart",
    b"art": "fanart",
    b"banner": "banner",
    b"clearlogo": "clearlogo",
    b"logo": "clearlogo",
    b"landscape": "landscape",
    b"thumb": "landscape",
    b"clearart": "clearart",
    b"disc": "disc",
    b"discart": "disc",
}
_SEASON_ART_RE = re.compile(
    rb"^season(?:[ _-]?(\d{1,3})|-(specials|all))-?(poster|banner|fanart|landscape|thumb)?$"
)
VIDEO_ART_RE = re.compile(rb"^(.+?)[-.](poster|thumb|fanart|banner|landscape|clearlogo)$")
_VIDEO_ART_ROLE = {b"thumb": "thumb", b"landscape": "thumb"}

VIDEO_EXTS = frozenset(
    b".mp4 .m4v .mkv .webm .avi .mov .wmv .flv .mpg .mpeg .ts .m2ts .mts .3gp .ogv .vob .divx".split()
)


ART_SUFFIXES = tuple(
    sep + word
    for sep in (b"-", b".")
    for word in (b"poster", b"thumb", b"fanart", b"banner", b"landscape", b"clearlogo")
)


def might_be_artwork(low_stem: bytes) -> bool:
    """Return whether a picture's lower-cased stem could name artwork (a quick test for the walk)."""
    return (
        low_stem in FOLDER_ART or low_stem.startswith(b"season") or low_stem.endswith(ART_SUFFIXES)
    )


def _split(name: bytes) -> tuple[bytes, bytes]:
    dot = name.rfind(b".")
    return (name[:dot], name[dot:].lower()) if dot > 0 else (name, b"")


def text_kind(name: bytes) -> str | None:
    """Return 'nfo' or 'subtitle' for a sidecar text file's name, None for anything else."""
    ext = _split(name)[1]
    if ext in NFO_EXTENSIONS:
        return "nfo"
    if ext in SUBTITLE_EXTENSIONS:
        return "subtitle"
    return None


def is_sidecar_name(name: bytes) -> bool:
    """Return True for a name the watcher and settling should follow beside media (text sidecars)."""
    return text_kind(name) is not None


def artwork_role(name: bytes, video_stems: frozenset[bytes] | set[bytes]) -> str | None:
    """Return the artwork role of a picture's name in a folder holding these video stems, or None.

    Roles: poster, fanart, banner, clearlogo, landscape, clearart, disc (folder-wide);
    'season:<n>:<role>' (n = 0 for specials, -1 for all seasons); 'video:<role>' for
    `<video>-poster` / `<video>-thumb` beside that video.
    """
    stem, ext = _split(name)
    if ext not in ARTWORK_EXTENSIONS:
        return None
    low = stem.lower()
    if low in FOLDER_ART:
        return FOLDER_ART[low]
    if m := _SEASON_ART_RE.match(low):
        number = 0 if m.group(2) == b"specials" else -1 if m.group(2) == b"all" else int(m.group(1))
        role = (m.group(3) or b"poster").decode()
        return f"season:{number}:{role}"
    if m := VIDEO_ART_RE.match(stem):
        if m.group(1) in video_stems:
            kind = m.group(2).lower()
            return "video:" + _VIDEO_ART_ROLE.get(kind, kind.decode())
    if ext == b".tbn" and stem in video_stems:
        return "video:thumb"  # Kodi's <video>.tbn
    return None


def video_stems(names: list[bytes]) -> frozenset[bytes]:
    """Return the stems of the video names in a folder listing."""
    out = set()
    for name in names:
        stem, ext = _split(name)
        if ext in VIDEO_EXTS:
            out.add(stem)
    return frozenset(out)


def sync(
    db: Database, folder_id: int, listed: list[tuple[bytes, int, int, str, str | None]]
) -> None:
    """Bring one folder's sidecar rows in line with its listing (inside the scan's transaction).

    A new or changed file (size or mtime) is 'pending' again for its reader; a file gone loses its
    row, and with it what was read from it (ON DELETE CASCADE).
    """
    rows = {
        raw: (sid, size, mtime_ns, kind, role)
        for sid, raw, size, mtime_ns, kind, role in db.execute(
            "SELECT id, raw_name, size, mtime_ns, kind, role FROM sidecars WHERE folder_id = ?",
            [folder_id],
        ).fetchall()
    }
    seen = set()
    for name, size, mtime_ns, kind, role in listed:
        seen.add(name)
        old = rows.get(name)
        if old is not None and old[1:] == (size, mtime_ns, kind, role):
            continue
        db.execute(
            """INSERT INTO sidecars (folder_id, raw_name, name, kind, role, size, mtime_ns)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (folder_id, raw_name) DO UPDATE SET kind = excluded.kind,
               role = excluded.role, size = excluded.size, mtime_ns = excluded.mtime_ns,
               status = 'pending', reason = NULL""",
            [folder_id, name, name.decode("utf-8", "replace"), kind, role, size, mtime_ns],
        )
    gone = [(rows[raw][0],) for raw in rows if raw not in seen]
    if gone:
        db.conn.executemany("DELETE FROM sidecars WHERE id = ?", gone)
