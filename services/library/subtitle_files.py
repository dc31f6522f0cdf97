"""Subtitle files beside the videos, matched to their videos: found by the scan, never written.

A sidecar belongs to a video when it sits in the video's folder with the video's base name
(`Movie.mkv` + `Movie.srt`, `Movie.en.srt`, `Movie.eng.forced.srt`, `Movie.English.SDH.srt`,
`Movie.pt-BR.srt`), or in a `Subs/` or `Subtitles/` folder beside it: by the same names, in a
subfolder named after the video (`Subs/Movie/2_English.srt`, as TV releases ship them), or by any
name when the folder holds that one video (`Subs/English.srt`). What the rest of the name says
becomes the language (a BCP 47 tag), the forced / SDH / default flags and a title.

The scan calls `sync_after_scan` with the folders whose listing changed; the walk's folder digest
counts sidecars too (services.library.sidecars, walker), so a subtitle file added or removed
later changes its folder and is picked up by the watcher's small scan of that folder, not a
rescan of the film. services.library.sidecars keeps every sidecar of a folder (nfo, artwork,
subtitles) by name; this module says which video each subtitle file belongs to, and what its
name says (language, forced, SDH), in `subtitle_files`. Only
cheap checks happen here (unreadable, too large, empty, a VobSub picture file); decoding and
parsing is services.playback.subtitles', which records what fails on the row.

A sidecar symlink whose target leaves the library is ignored, like a media symlink.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services import fsutil
from services.library import languages
from services.library.sidecars import SUBTITLE_EXTENSIONS

log = logging.getLogger(__name__)

SUBS_FOLDERS = frozenset({"subs", "subtitles", "sub", "subtitle"})
MAX_BYTES = 20 * 1024 * 1024  # a real subtitle file is well under 1 MB; karaoke ASS a few MB
FORCED = frozenset({"forced", "foreign"})
SDH = frozenset({"sdh", "hi", "cc", "hoh"})
DEFAULT = frozenset({"default"})
_SPLIT = re.compile(r"[._\s\-\[\]()]+")
_MPEG_PS = b"\x00\x00\x01\xba"  # a VobSub .sub is an MPEG program stream of pictures


@dataclass(frozen=True)
class NameFacts:
    """What a sidecar's name says beyond the video's base name."""

    language: str | None  # BCP 47
    title: str | None
    forced: bool
    sdh: bool
    default: bool


@dataclass(frozen=True)
class Found:
    """A sidecar on disk, matched to a video."""

    media_id: int
    path: bytes  # relative to the library root
    format: str  # srt | vtt | ass | ssa | sub
    facts: NameFacts
    size: int
    mtime_ns: int
    status: str  # new (not read yet) | failed
    reason: str | None


def is_sidecar(name: bytes | str) -> bool:
    """Return True for a subtitle file name (by extension; hidden files never)."""
    raw = os.fsencode(name)
    dot = raw.rfind(b".")
    return dot > 0 and raw[0] != 46 and raw[dot:].lower() in SUBTITLE_EXTENSIONS


def name_facts(tokens: list[str]) -> NameFacts:
    """Read language, flags and a title from the tokens of a sidecar name (after the base name)."""
    language = None
    forced = sdh = default = False
    rest = []
    for token in tokens:
        low = token.lower()
        if not low or low.isdigit():
            continue  # "2_English.srt": a track number
        if low in FORCED:
            forced = True
        elif low in SDH:
            sdh = True
        elif low in DEFAULT:
            default = True
        elif language is None and (found := languages.tag(token)):
            language = found
        else:
            rest.append(token)
    return NameFacts(language, " ".join(rest) or None, forced, sdh, default)


def _tokens(suffix: str) -> list[str]:
    """Split what follows the base name: `.en.forced`, ` - English SDH`, `_eng`."""
    # Keep BCP 47 region tags whole (pt-BR, es-419, zh-Hans) before splitting on '-'.
    parts = re.split(r"[._\s\[\]()]+", suffix)
    out = []
    for part in parts:
        if re.fullmatch(r"[A-Za-z]{2,3}-(?:[A-Za-z]{2}|\d{3}|[A-Za-z]{4})", part):
            out.append(part)
        else:
            out += [p for p in part.split("-") if p]
    return out


def match(stems: list[str], sidecar: str, *, any_name: bool) -> tuple[str, NameFacts] | None:
    """Return (video stem, facts) for the video a sidecar file name belongs to, or None.

    The longest stem that the name starts with wins (`Movie.Part2.en.srt` belongs to
    `Movie.Part2`, not `Movie`). With `any_name` (a Subs/ folder of one video, or a folder named
    after the video) a name that matches no stem belongs to the only stem given.
    """
    base = sidecar.rpartition(".")[0]
    low = base.lower()
    best = None
    for stem in stems:
        s = stem.lower()
        if low == s or (low.startswith(s) and not low[len(s)].isalnum()):
            if best is None or len(stem) > len(best):
                best = stem
    if best is not None:
        return best, name_facts(_tokens(base[len(best) :]))
    if any_name and len(stems) == 1:
        return stems[0], name_facts(_tokens(base))
    return None


def _entries(root: bytes, rel: bytes) -> list[tuple[str, bytes, os.stat_result]]:
    """Return (name, rel path, stat) of the sidecar files in a folder; symlinks out are skipped."""
    folder = root + b"/" + rel if rel else root
    out = []
    try:
        listing = list(fsutil.scandir(folder))
    except OSError:
        return out
    for entry in listing:
        if not is_sidecar(entry.name):
            continue
        try:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not target.startswith(root.rstrip(b"/") + b"/"):
                    continue  # leaves the library
            st = os.stat(entry.path)
        except OSError:
            continue  # dangling, or gone since the listing
        if not stat.S_ISREG(st.st_mode):
            continue
        path = rel + b"/" + entry.name if rel else entry.name
        out.append((os.fsdecode(entry.name), path, st))
    return out


def _subfolders(root: bytes, rel: bytes) -> list[tuple[str, bytes]]:
    """Return (name, rel path) of the real (not symlinked) subfolders of a folder."""
    folder = root + b"/" + rel if rel else root
    try:
        listing = list(fsutil.scandir(folder))
    except OSError:
        return []
    out = []
    for entry in listing:
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(b"."):
            out.append((os.fsdecode(entry.name), rel + b"/" + entry.name if rel else entry.name))
    return out


def _check(root: bytes, path: bytes, size: int) -> tuple[str, str | None]:
    """Return (status, reason) from the cheap checks: empty, too large, unreadable, VobSub."""
    if size == 0:
        return "failed", "empty file"
    if size > MAX_BYTES:
        return (
            "failed",
            f"too large for a subtitle file ({size / 1e6:.1f} MB; at most {MAX_BYTES // 2**20} MiB)",
        )
    try:
        with open(root + b"/" + path, "rb", opener=_nonblocking) as f:
            head = f.read(4)
    except OSError as exc:
        return "failed", f"cannot read: {exc.strerror or exc}"
    if head == _MPEG_PS:
        return "failed", "a VobSub picture file (.sub/.idx); only text sidecars are read"
    return "new", None


def _nonblocking(name: str | bytes, flags: int) -> int:
    return os.open(name, flags | os.O_NONBLOCK | os.O_CLOEXEC)


def discover(root: bytes, folder: bytes, videos: dict[str, int]) -> list[Found]:
    """Return the sidecars of the videos (stem -> media_id) in one folder of a library."""
    stems = list(videos)
    if not stems:
        return []
    hits: list[tuple[str, bytes, os.stat_result, tuple[str, NameFacts]]] = []
    for name, path, st in _entries(root, folder):
        m = match(stems, name, any_name=False)
        if m:
            hits.append((name, path, st, m))
    by_stem = {s.lower(): s for s in stems}
    for sub_name, sub_rel in _subfolders(root, folder):
        if sub_name.lower() not in SUBS_FOLDERS:
            continue
        for name, path, st in _entries(root, sub_rel):
            m = match(stems, name, any_name=True)
            if m:
                hits.append((name, path, st, m))
        for inner_name, inner_rel in _subfolders(root, sub_rel):
            stem = by_stem.get(inner_name.lower())
            if stem is None:
                continue
            for name, path, st in _entries(root, inner_rel):
                m = match([stem], name, any_name=True)
                if m:
                    hits.append((name, path, st, m))
    out = []
    for name, path, st, (stem, facts) in hits:
        status, reason = _check(root, path, st.st_size)
        fmt = name.rpartition(".")[2].lower()
        out.append(
            Found(videos[stem], path, fmt, facts, st.st_size, st.st_mtime_ns, status, reason)
        )
    return out


def video_folders(paths: list[bytes]) -> set[bytes]:
    """Return the folders whose videos' sidecars may have changed when these folders did."""
    out = set()
    for path in paths:
        out.add(path)
        parent, _, name = path.rpartition(b"/")
        if name.decode("utf-8", "replace").lower() in SUBS_FOLDERS:
            out.add(parent)
        grand, _, pname = parent.rpartition(b"/")
        if parent and pname.decode("utf-8", "replace").lower() in SUBS_FOLDERS:
            out.add(grand)
    return out


def sync_folder(db: Database, library_id: int, root: bytes, folder: bytes) -> int:
    """Bring the sidecar rows of one folder's videos in line with the disk; return rows changed."""
    row = db.execute(
        "SELECT id FROM folders WHERE library_id = ? AND path = ?", [library_id, folder]
    ).fetchone()
    existing = []
    if row is not None:
        existing = db.execute(
            "SELECT id, media_id, path, size, mtime_ns FROM subtitle_files WHERE folder_id = ?",
            [row[0]],
        ).fetchall()
    videos: dict[str, int] = {}
    if row is not None:
        for name, media_id in db.execute(
            "SELECT f.name, f.media_id FROM files f JOIN media m ON m.id = f.media_id "
            "WHERE f.folder_id = ? AND f.present = 1 AND m.kind = 'video'",
            [row[0]],
        ):
            videos[name.rpartition(".")[0] or name] = media_id
    found = discover(root, folder, videos) if videos else []
    keep = {(f.media_id, f.path): f for f in found}
    old = {(r[1], bytes(r[2])): r for r in existing}
    gone = [r[0] for key, r in old.items() if key not in keep]
    fresh = [
        f
        for key, f in keep.items()
        if key not in old or (old[key][3], old[key][4]) != (f.size, f.mtime_ns)
    ]
    if not gone and not fresh:
        return 0
    now = time.time()
    with dbmod.write(db):
        for i in range(0, len(gone), 500):
            chunk = gone[i : i + 500]
            db.execute(
                f"DELETE FROM subtitle_files WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
        for f in fresh:
            db.execute(
                """INSERT INTO subtitle_files (media_id, library_id, folder_id, path, format, language,
                       title, forced, sdh, is_default, size, mtime_ns, status, reason, found_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (library_id, path, media_id) DO UPDATE SET
                       folder_id = excluded.folder_id, format = excluded.format,
                       language = excluded.language, title = excluded.title,
                       forced = excluded.forced, sdh = excluded.sdh,
                       is_default = excluded.is_default, size = excluded.size,
                       mtime_ns = excluded.mtime_ns, status = excluded.status,
                       reason = excluded.reason, encoding = NULL, cues = NULL,
                       found_at = excluded.found_at""",
                [
                    f.media_id,
                    library_id,
                    row[0],
                    f.path,
                    f.format,
                    f.facts.language,
                    f.facts.title,
                    int(f.facts.forced),
                    int(f.facts.sdh),
                    int(f.facts.default),
                    f.size,
                    f.mtime_ns,
                    f.status,
                    f.reason,
                    now,
                ],
            )
    for f in fresh:
        if f.status == "failed":
            log.warning("subtitle file %s: %s", os.fsdecode(root + b"/" + f.path), f.reason)
    return len(gone) + len(fresh)


def sync_after_scan(db: Database, library_id: int, root: bytes, changed: list[bytes]) -> int:
    """Sync the sidecars of every video folder touched by these changed (or vanished) folders."""
    total = 0
    for folder in sorted(video_folders(changed)):
        try:
            total += fsutil.retry_estale(
                lambda folder=folder: sync_folder(db, library_id, root, folder), "subtitle files"
            )
        except OSError as exc:
            log.warning("sidecars of %s: %s", os.fsdecode(root + b"/" + folder), exc)
    return total
