"""From a media_hash to a trusted, open file in a library — the only way media reaches HTTP.

A path never comes from a request: the media_hash (16 hex characters, checked before the database
is asked) selects rows, and the path is built from a configured library root and the path the
scanner recorded. It is then resolved (symlinks followed) and must still lie inside that root's
resolved path, so a symlink planted after the scan, or a folder swapped for one, cannot lead out
of the library; the final open refuses a symlink (O_NOFOLLOW), closing the gap between the check
and the open for the file itself.

Errors: an unknown hash or a file gone from disk is NotFound (404). Storage that does not answer
now — NFS's ESTALE after retries, EIO, a library root that is missing or empty while the database
holds its files (an unmounted share) — is Unavailable (503 with Retry-After), never 404: the file
is still there, the client should come back.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from services import fsutil
from services.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

HASH_RE = re.compile(r"[0-9a-f]{16}")
RETRY_AFTER = 10  # seconds a client waits before asking again for a file on unresponsive storage

# Errors that say the storage is unwell rather than the file absent: NFS/SMB trouble, disk errors.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.ESTALE,
        errno.EIO,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ECONNABORTED,
        errno.ECONNRESET,
        errno.ENOLINK,
    }
)

# Python's mimetypes knows few video types and depends on /etc/mime.types; these are fixed.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".mov": "video/quicktime",
    ".wmv": "video/x-ms-wmv",
    ".flv": "video/x-flv",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".vob": "video/mpeg",
    ".ts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".ogv": "video/ogg",
    ".divx": "video/x-msvideo",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".avif": "image/avif",
    ".vtt": "text/vtt; charset=utf-8",
}


@dataclass(frozen=True)
class MediaFile:
    """A present copy of a media item: a resolved absolute path inside a configured library."""

    media_id: int
    media_hash: str
    kind: str  # video | picture
    path: Path
    name: str  # the file's name as shown (invalid UTF-8 replaced)
    content_type: str


def is_media_hash(value: str) -> bool:
    """Return True when value has the shape of a media_hash: 16 lower-case hex characters."""
    return HASH_RE.fullmatch(value) is not None


def content_type(name: str) -> str:
    """Return the Content-Type for a file name from its extension."""
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def content_disposition(name: str, *, attachment: bool) -> str:
    """Return a Content-Disposition value with an ASCII fallback and an RFC 5987 `filename*`.

    RFC 6266 §4.3: old clients read `filename`, so it carries an ASCII stand-in; current ones
    prefer `filename*`, the UTF-8 name percent-encoded.
    """
    kind = "attachment" if attachment else "inline"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in name)
    encoded = quote(name.encode("utf-8", "replace"), safe="!#$&+-.^_`|~")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def known(db: Database, media_hash: str) -> bool:
    """Return True when some media has this hash (present on disk or not)."""
    return is_media_hash(media_hash) and bool(
        db.execute("SELECT 1 FROM media WHERE media_hash = ?", [media_hash]).fetchone()
    )


_real_roots: dict[bytes, bytes] = {}


def _inside(real: bytes, root: bytes) -> bool:
    """Return True when the resolved path `real` lies inside library `root` (resolved too)."""
    # The root's resolution is remembered (it is asked on every request) and redone before
    # refusing, so a root whose symlink was re-pointed is judged by where it points now.
    for fresh in (False, True):
        resolved = _real_roots.get(root) if not fresh else None
        if resolved is None:
            resolved = _real_roots[root] = os.path.realpath(root)
        if real.startswith(resolved.rstrip(b"/") + b"/"):
            return True
    return False


def locate(db: Database, media_hash: str, roots: Iterable[Path]) -> MediaFile:
    """Return a present copy of the media with this hash in one of the configured `roots`.

    Raise NotFound for a malformed or unknown hash or when no copy is on disk; Unavailable when a
    copy may be there but its storage does not answer (see the module docstring).
    """
    if not is_media_hash(media_hash):
        raise NotFound("no such media")
    configured = {str(r) for r in roots}
    rows = db.execute(
        "SELECT m.id, m.kind, l.root, f.path, f.name FROM media m "
        "JOIN files f ON f.media_id = m.id JOIN libraries l ON l.id = f.library_id "
        "WHERE m.media_hash = ? AND f.present = 1 ORDER BY f.id",
        [media_hash],
    ).fetchall()
    rows = [r for r in rows if r[2] in configured]
    if not rows:
        raise NotFound("no such media")
    storage_trouble: OSError | None = None
    for media_id, kind, root_text, rel, name in rows:
        root = os.fsencode(root_text)
        real = os.path.realpath(root + b"/" + bytes(rel))
        if not _inside(real, root):
            log.warning("refusing %r: it resolves outside its library %s", real, root_text)
            continue
        try:
            st = fsutil.stat(real)
        except OSError as exc:
            if exc.errno in TRANSIENT_ERRNOS:
                storage_trouble = exc
            continue
        if stat.S_ISREG(st.st_mode):
            path = Path(os.fsdecode(real))
            return MediaFile(media_id, media_hash, kind, path, name, content_type(name))
    if storage_trouble is not None:
        log.warning("media %s: storage error %s", media_hash, storage_trouble)
        raise Unavailable(f"storage error: {storage_trouble.strerror}", RETRY_AFTER)
    for root_text in {r[2] for r in rows}:
        if _root_offline(os.fsencode(root_text)):
            raise Unavailable(f"library {root_text} is offline", RETRY_AFTER)
    raise NotFound("the file is no longer on disk")


def _root_offline(root: bytes) -> bool:
    """Return True when a library root is missing, unreadable or empty (an unmounted share)."""
    try:
        with os.scandir(root) as it:
            return next(it, None) is None
    except OSError:
        return True


def open_file(media: MediaFile) -> tuple[io.FileIO, os.stat_result]:
    """Open a located file for reading and return it with its fstat.

    Unbuffered, so the file position is the descriptor's: gunicorn's sendfile starts from it.
    """

    def opener(name: str, flags: int) -> int:
        # O_NOFOLLOW: a symlink swapped in since locate() is refused; O_NONBLOCK: a FIFO swapped
        # in cannot hang the open (fstat then refuses it).
        return os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)

    try:
        f = fsutil.retry_estale(lambda: open(media.path, "rb", buffering=0, opener=opener), "open")
    except OSError as exc:
        if exc.errno in TRANSIENT_ERRNOS:
            log.warning("media %s: cannot open %s: %s", media.media_hash, media.path, exc)
            raise Unavailable(f"storage error: {exc.strerror}", RETRY_AFTER) from None
        if exc.errno != errno.ENOENT:
            log.warning("media %s: cannot open %s: %s", media.media_hash, media.path, exc)
        raise NotFound("the file is no longer on disk") from None
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise NotFound("not a regular file")
    return f, st
