"""From a media_hash to a trusted, open file in a library — the only way media reaches HTTP.

A path never comes from a request: the media_hash (16 hex characters, checked before the database
is asked) selects rows, and the path is built from a configured library root and the path the
scanner recorded. What that path opens (symlinks followed) must lie inside that root's resolved
path and be a regular file, so a symlink planted after the scan, or a folder swapped for one,
cannot lead out of the library. The check is made on the opened descriptor, not on the name
before opening it, so nothing swapped between the check and the read can slip through
(`_open_inside`; Linux: O_PATH and /proc).

Errors: an unknown hash or a file gone from disk is NotFound (404). Storage that does not answer
now — NFS's ESTALE after retries, EIO, a library root that is missing or empty while the database
holds its files (an unmounted share) — is Unavailable (503 with Retry-After), never 404: the file
is still there, the client should come back.
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlite_utils import Database

from services import fsutil
from services.errors import NotFound, Unavailable
from services.library.identity import oshash_fd

log = logging.getLogger(__name__)

HASH_RE = re.compile(r"[0-9a-f]{16}")
PROC_FD = os.path.isdir("/proc/self/fd")  # where _open_inside asks the kernel about a file
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


class MediaFile(NamedTuple):
    """A present copy of a media item, open for reading: inside a configured library."""

    media_id: int
    media_hash: str
    kind: str  # video | picture
    file: io.FileIO  # unbuffered: gunicorn's sendfile starts at the descriptor's offset
    stat: os.stat_result
    name: str  # the file's name as shown (invalid UTF-8 replaced)
    content_type: str


class Copy(NamedTuple):
    """Where the database says one copy of a media item is."""

    media_id: int
    kind: str  # video | picture
    root: bytes  # the library root as configured
    rel: bytes  # the path the scanner recorded, relative to the root
    name: str  # the file's name as shown
    content_type: str


def is_media_hash(value: str) -> bool:
    """Return True when value has the shape of a media_hash: 16 lower-case hex characters."""
    return HASH_RE.fullmatch(value) is not None


def content_type(name: str) -> str:
    """Return the Content-Type for a file name from its extension."""
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


@functools.lru_cache(maxsize=1024)  # asked on every range request of a playing file
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


def _inside(real: bytes, root: bytes) -> bool:
    """Return True when the resolved path `real` lies inside the resolved library `root`."""
    return real.startswith(root.rstrip(b"/") + b"/")


def copies(db: Database, media_hash: str, configured: frozenset[str]) -> tuple[Copy, ...]:
    """Return where the database says the present copies of a media item are, in the
    `configured` library roots (as text), oldest first."""
    rows = db.execute(
        "SELECT m.id, m.kind, l.root, f.path, f.name FROM media m "
        "JOIN files f ON f.media_id = m.id JOIN libraries l ON l.id = f.library_id "
        "WHERE m.media_hash = ? AND f.present = 1 ORDER BY f.id",
        [media_hash],
    ).fetchall()
    return tuple(
        Copy(media_id, kind, os.fsencode(root), bytes(rel), name, content_type(name))
        for media_id, kind, root, rel, name in rows
        if root in configured
    )


def remembered_copies(
    db: Database, media_hash: str, configured: frozenset[str], memo: dict[Any, Any] | None
) -> tuple[Copy, ...]:
    """`copies`, kept in `memo` (services.db.memo: emptied by any commit) when one is given."""
    if memo is None:
        return copies(db, media_hash, configured)
    key = ("copies", media_hash, configured)
    rows = memo.get(key)
    if rows is None:
        rows = memo[key] = copies(db, media_hash, configured)
    return rows


def open_media(
    db: Database, media_hash: str, roots: Iterable[Path], memo: dict[Any, Any] | None = None
) -> MediaFile:
    """Open a present copy of the media with this hash in one of the configured `roots`.

    Raise NotFound for a malformed or unknown hash or when no copy is on disk; Unavailable when a
    copy may be there but its storage does not answer (see the module docstring). With `memo`
    (services.db.memo: emptied by any commit) where the copies are is read from the database
    once while it is unchanged — a moved, renamed or vanished file is a commit of the scanner.
    The file itself is opened and checked on every call, whatever the memo holds.
    """
    if not PROC_FD:
        log.error("cannot serve media: /proc is not mounted (Linux's /proc/self/fd is needed)")
        raise Unavailable("the server cannot open media files: /proc is not mounted", RETRY_AFTER)
    if not is_media_hash(media_hash):
        raise NotFound("no such media")
    rows = remembered_copies(db, media_hash, frozenset(map(str, roots)), memo)
    if not rows:
        raise NotFound("no such media")
    storage_trouble: OSError | None = None
    for media_id, kind, root, rel, name, ctype in rows:
        try:
            opened = _open_inside(root, rel)
        except OSError as exc:
            if exc.errno in TRANSIENT_ERRNOS:
                storage_trouble = exc
            elif exc.errno != errno.ENOENT:
                log.warning("media %s: cannot open %r: %s", media_hash, bytes(rel), exc)
            continue
        if opened is not None:
            f, st = opened
            return MediaFile(media_id, media_hash, kind, f, st, name, ctype)
    if storage_trouble is not None:
        log.warning("media %s: storage error %s", media_hash, storage_trouble)
        raise Unavailable(f"storage error: {storage_trouble.strerror}", RETRY_AFTER)
    for root in {r.root for r in rows}:
        if _root_offline(root):
            raise Unavailable(f"library {os.fsdecode(root)} is offline", RETRY_AFTER)
    raise NotFound("the file is no longer on disk")


def open_fast(rows: tuple[Copy, ...]) -> tuple[int, os.stat_result, Copy] | None:
    """Open the first copy as open_media would, as a bare descriptor — or None whenever
    anything is unusual (missing, refused, storage errors): open_media then decides, logs and
    raises. The same checks as _open_inside, in one frame: the common case of every range."""
    if not PROC_FD or not rows:
        return None
    copy = rows[0]
    try:
        handle = os.open(copy.root, os.O_PATH | os.O_CLOEXEC)
        try:
            real_root = os.readlink(b"/proc/self/fd/%d" % handle)
        finally:
            os.close(handle)
        handle = os.open(copy.root + b"/" + copy.rel, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        link = b"/proc/self/fd/%d" % handle
        if not os.readlink(link).startswith(real_root.rstrip(b"/") + b"/"):
            return None
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode):
            return None
        return os.open(link, os.O_RDONLY | os.O_CLOEXEC), st, copy
    except OSError:
        return None
    finally:
        os.close(handle)


def open_inside(root: str, rel: str) -> tuple[io.FileIO, os.stat_result] | None:
    """Open `rel` inside the library folder `root` (a worker's job), as the server opens media:
    a regular file that resolves inside `root`, else None."""
    return _open_inside(os.fsencode(root.rstrip("/") or "/"), os.fsencode(rel))


def open_checked(root: str, rel: str, media_hash: str) -> io.FileIO:
    """Open `rel` inside the library folder `root` (a worker's job) and check it is the job's
    media (its media_hash); NotFound when it is missing, outside `root` or another file."""
    found = open_inside(root, rel)
    if found is None:
        raise NotFound("no such file in this worker's library folder")
    f, st = found
    try:
        got = oshash_fd(f.fileno(), st.st_size)
    except OSError:
        f.close()
        raise
    if got != media_hash:
        f.close()
        raise NotFound(f"the file here is another one (media_hash {got})")
    return f


def _open_inside(root: bytes, rel: bytes) -> tuple[io.FileIO, os.stat_result] | None:
    """Open root/rel for reading if it resolves to a regular file inside `root`, else None.

    The path is first opened with O_PATH, which resolves every symlink but opens nothing for
    reading (a device or FIFO planted in the library is never opened, so it cannot block or
    act); the kernel then says where that descriptor really is (/proc/self/fd), which must be
    inside the library, and the file is reopened through it — the very file that was checked,
    whatever is renamed or swapped meanwhile. Symlinks inside the library are followed.
    """
    # Where the root is now, asked of the kernel each time (~2 µs): a remembered resolution
    # let a root re-pointed elsewhere serve symlinks into its old target (os.path.realpath
    # instead costs ~40 µs).
    real_root = _resolve(root)
    handle = _open_path(root + b"/" + rel)
    try:
        link = b"/proc/self/fd/%d" % handle
        real = os.readlink(link)
        if not _inside(real, real_root):
            log.warning("refusing %r: it resolves outside its library %s", real, os.fsdecode(root))
            return None
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode):
            return None
        fd = os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(handle)
    return io.FileIO(fd, "rb", closefd=True), st


def _resolve(path: bytes) -> bytes:
    """Return `path` with every symlink resolved, as the kernel sees it now."""
    handle = _open_path(path)
    try:
        return os.readlink(b"/proc/self/fd/%d" % handle)
    finally:
        os.close(handle)


def _open_path(path: bytes) -> int:
    """Return an O_PATH descriptor of `path` (symlinks followed), retrying ESTALE."""
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ESTALE:
            raise
    return fsutil.retry_estale(lambda: os.open(path, os.O_PATH | os.O_CLOEXEC), "open")


def _root_offline(root: bytes) -> bool:
    """Return True when a library root is missing, unreadable or empty (an unmounted share)."""
    try:
        with os.scandir(root) as it:
            return next(it, None) is None
    except OSError:
        return True
