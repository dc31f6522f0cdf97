"""Media routes: the original file (Range, ETag, 304, 416), its thumbnail, scrub-preview sprite
and preview clip.

Files are not sent with Flask's send_file: under gunicorn its Range support reads and discards
every byte before the range start and loses sendfile() (SPEC §5: 225–278 ms for 1 MiB at 580 MB).
Here the file is opened, positioned at the range start and handed to the server's
`wsgi.file_wrapper` with an explicit Content-Length; gunicorn then sendfile()s `Content-Length`
bytes from the descriptor's current offset (gunicorn/http/wsgi.py Response.sendfile). Without a
file_wrapper (the test client) a bounded iterator reads the same bytes.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from flask import Blueprint, Response, current_app, request
from sqlite_utils import Database

from blueprints.common import get_db, settings
from services.errors import NotFound, Unavailable
from services.jobs import Jobs
from services.playback import media_files, ranges
from services.previews import clips, sprites, thumbnails

log = logging.getLogger(__name__)

bp = Blueprint("media", __name__, url_prefix="/media")

CHUNK = 256 * 1024  # read size when the server cannot sendfile (TLS, test client)
FILE_CACHE = "private, no-cache"  # revalidate with the ETag: a file can change under its hash
IMMUTABLE = "private, max-age=31536000, immutable"  # content-addressed; private: behind sign-in
PLACEHOLDER_CACHE = "private, max-age=60"  # the real thumbnail may exist a minute later
HEADERS_ONLY = frozenset({304, 412, 416})  # answers without a body
THUMB_WAIT = 3.0  # seconds a thumbnail request waits for the job that makes it
SPRITE_WAIT = 3.0  # seconds a sprite request waits (the player asks once, when it loads)


@bp.url_value_preprocessor
def _check_hash(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # A malformed hash is a 404 before anything touches the database or the disk.
    if values and not media_files.is_media_hash(values.get("media_hash", "")):
        raise NotFound("no such media")


@bp.errorhandler(NotFound)
@bp.errorhandler(Unavailable)
def error_answer(exc: NotFound | Unavailable) -> Response:
    """Answer a missing file with 404, storage that does not answer with 503 and Retry-After."""
    if isinstance(exc, Unavailable):
        response = Response(f"{exc}; try again shortly\n", 503, mimetype="text/plain")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return Response(f"{exc}\n", 404, mimetype="text/plain")


@bp.get("/<media_hash>/file", endpoint="file")
def original(media_hash: str) -> Response:
    """Send the original file: whole, one range, or several (multipart/byteranges).

    Requests for it seldom get here: blueprints/media_direct.py answers them in front of Flask
    and hands on only those the guard refuses (foreign Host, no sign-in) and, should it fail
    unexpectedly, the request it failed on — which this route then answers the same way.
    """
    found = open_original(get_db(), media_hash, settings().media_dirs, request.args.get("download"))
    return answer_file(request.environ, found.file, found.size, found.mtime, found.etag,
                       found.content_type, found.cache_control, found.disposition)  # fmt: skip


class Original(NamedTuple):
    """A media item's file, open, with what its answer needs."""

    file: io.FileIO
    size: int
    mtime: int
    etag: str
    content_type: str
    disposition: str | None
    cache_control: str = FILE_CACHE


def open_original(
    db: Database,
    media_hash: str,
    media_dirs: Iterable[Path],
    download: str | None,
    memo: dict[Any, Any] | None = None,
) -> Original:
    """Find and open a media item's file (NotFound, Unavailable as media_files says; `memo`:
    where its copies are, kept while the database is unchanged — services.db.memo)."""
    media = media_files.open_media(db, media_hash, media_dirs, memo)
    st = media.stat
    return Original(
        media.file,
        st.st_size,
        int(st.st_mtime),
        ranges.make_etag(media_hash, st.st_size, st.st_mtime_ns),
        media.content_type,
        media_files.content_disposition(media.name, attachment=download == "1"),
    )


@bp.get("/<media_hash>/thumb")
def thumb(media_hash: str) -> Response:
    """Send the poster thumbnail; make it now if it is missing, else send the placeholder."""
    path = thumbnails.thumb_path(settings().data_dir, media_hash)
    if thumbnails.is_ready(path):
        return send_path(path, IMMUTABLE)
    jobs = _jobs()
    if jobs is None:
        if not media_files.known(get_db(), media_hash):
            raise NotFound("no such media")
        made = None
    else:
        made = jobs.thumbnail(media_hash, wait=THUMB_WAIT)  # NotFound for unknown media
    if made is None:
        return send_path(thumbnails.placeholder_path(), PLACEHOLDER_CACHE)
    return send_path(made, IMMUTABLE)


@bp.get("/<media_hash>/sprite.jpg")
def sprite_image(media_hash: str) -> Response:
    """Send the scrub-preview sprite sheet."""
    return send_path(_sprite(media_hash)[0], IMMUTABLE)


@bp.get("/<media_hash>/sprite.vtt")
def sprite_vtt(media_hash: str) -> Response:
    """Send the WebVTT that maps seek-bar times to tiles of the sprite sheet."""
    return send_path(_sprite(media_hash)[1], IMMUTABLE)


@bp.get("/<media_hash>/clip.mp4")
def clip(media_hash: str) -> Response:
    """Send the preview clip (a few seconds, silent, H.264 MP4; Range as for any file); 404
    until the background work has made it: nobody waits for one."""
    return send_path(clips.clip_path(settings().data_dir, media_hash), IMMUTABLE)


def _jobs() -> Jobs | None:
    """Return this process's job runner, None when background work is off."""
    return getattr(current_app.extensions.get("background"), "jobs", None)


def _sprite(media_hash: str) -> tuple[Path, Path]:
    paths = sprites.sprite_paths(settings().data_dir, media_hash)
    if all(thumbnails.is_ready(p) for p in paths):
        return paths
    jobs = _jobs()
    made = jobs.sprite(media_hash, wait=SPRITE_WAIT) if jobs is not None else None
    if made is None:
        raise NotFound("no scrub preview for this media (yet)")
    return made


def send_path(path: Path, cache_control: str) -> Response:
    """Send a generated file from the data dir (trusted path), or 404 when it is not there."""
    try:
        f = open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise NotFound("not generated yet") from None
    st = os.fstat(f.fileno())
    etag = ranges.make_etag(path.stem, st.st_size, st.st_mtime_ns)
    kind = media_files.content_type(path.name)
    return answer_file(request.environ, f, st.st_size, int(st.st_mtime), etag, kind, cache_control)


def answer_file(
    environ: dict[str, Any],
    f: IO[bytes],
    size: int,
    mtime: int,
    etag: str,
    content_type: str,
    cache_control: str,
    disposition: str | None = None,
) -> Response:
    """Answer a WSGI request (GET/HEAD) for an open file per RFC 9110 (services/playback/ranges.py);
    the answer closes the file. Without Flask's request context: blueprints/media_direct.py
    answers with it too."""
    try:
        answer, headers, start, length = prepare(
            environ["REQUEST_METHOD"], RequestHeaders(environ), size, mtime, etag, cache_control,
            disposition,
        )  # fmt: skip
        if answer.status in HEADERS_ONLY:
            f.close()
            return Response(status=answer.status, headers=headers)
        if answer.multipart:
            sock = environ.get("gunicorn.socket")
            return _multipart(f, size, answer.ranges, content_type, headers, sock)
        return Response(
            passthrough(environ, f, start, length),
            answer.status,
            headers,
            content_type=content_type,
            direct_passthrough=True,
        )
    except BaseException:
        f.close()  # no answer holds it: it would stay open until the garbage collector ran
        raise


class RequestHeaders:
    """A WSGI request's headers by HTTP name, as services/ranges.decide asks for them.

    Werkzeug's EnvironHeaders does the same with several times the work per lookup, and a
    range request looks up six headers.
    """

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _ENVIRON_KEYS.get(name) or "HTTP_" + name.upper().replace("-", "_")
        return self.environ.get(key, default)


# The WSGI keys of the headers ranges.decide asks for, by the names it asks with.
_ENVIRON_KEYS = {
    name: "HTTP_" + name.upper().replace("-", "_")
    for name in (
        "Range",
        "If-Range",
        "If-Match",
        "If-None-Match",
        "If-Modified-Since",
        "If-Unmodified-Since",
    )  # fmt: skip
}


def passthrough(environ: dict[str, Any], f: IO[bytes], start: int, length: int) -> Any:
    """Return the body that sends `length` bytes of `f` from `start`: sendfile() through the
    server's wsgi.file_wrapper, else read in CHUNK blocks. Closing it closes the file."""
    f.seek(start)
    body = Bounded(f, length, environ.get("gunicorn.socket"), start)
    wrapper = environ.get("wsgi.file_wrapper")
    return wrapper(body, CHUNK) if wrapper else body


def prepare(
    method: str,
    request_headers: ranges.Headers,
    size: int,
    mtime: int,
    etag: str,
    cache_control: str,
    disposition: str | None = None,
) -> tuple[ranges.Answer, dict[str, str], int, int]:
    """Decide how to answer a GET/HEAD for a file: the answer, its headers, and for one body
    (200 or a single-range 206) where it starts and how long it is (0, 0 otherwise).

    `request_headers` must look names up as HTTP does (RequestHeaders, Werkzeug's Headers).
    Content-Type is left to the caller.
    """
    v = ranges.Validators(etag, mtime)
    answer = ranges.decide(method, request_headers, size, v)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": v.http_date,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if answer.status in HEADERS_ONLY:
        if answer.status == 416:
            headers["Content-Range"] = f"bytes */{size}"
        return answer, headers, 0, 0
    if disposition:
        headers["Content-Disposition"] = disposition
    if answer.multipart:
        return answer, headers, 0, 0
    if answer.status == 206:
        first = answer.ranges[0]
        start, length = first.start, first.length
        headers["Content-Range"] = first.content_range(size)
    else:
        start, length = 0, size
    headers["Content-Length"] = str(length)
    return answer, headers, start, length


class Bounded:
    """A file limited to `length` bytes from its current position.

    It keeps fileno() so a server can sendfile() it (gunicorn sends Content-Length bytes from the
    descriptor's offset); read() stops at the limit so a server that reads instead (TLS) never
    reads to the end of a multi-gigabyte file for a 1 MiB range. Iterating it reads CHUNK blocks.

    A file truncated while it is sent ends before the promised Content-Length: sendfile() and
    read() then simply stop, the server believes the answer complete, and the client waits for
    bytes that never come until the keep-alive timeout. So closing it checks the file still
    reaches the promised end; when it does not, the connection (`sock`, gunicorn's) is shut down
    at once and the shortfall logged (issue 20).
    """

    def __init__(
        self,
        f: IO[bytes] | RawFile,
        length: int,
        sock: socket.socket | None = None,
        start: int | None = None,  # where f is now, if known (f.tell() otherwise)
    ) -> None:
        self.f = f
        self.remaining = length
        self.end = (f.tell() if start is None else start) + length
        self.sock = sock
        self.on_close: Callable[[], None] | None = None  # called once, when it is closed

    def fileno(self) -> int:
        return self.f.fileno()

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        data = self.f.read(n) if n > 0 else b""
        self.remaining -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.read(CHUNK)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        on_close, self.on_close = self.on_close, None
        try:
            close_checked(self.f, self.end if self.remaining else 0, self.sock)
        finally:
            if on_close is not None:
                on_close()


def close_checked(f: IO[bytes], end: int, sock: socket.socket | None) -> None:
    """Close an answer's file; if it no longer reaches `end` (truncated while it was sent), log
    it and shut the connection down, so the client stops waiting for the promised bytes now."""
    try:
        size = os.fstat(f.fileno()).st_size if end else 0
    except (OSError, ValueError):
        size = end
    finally:
        f.close()
    if size >= end:
        return
    log.warning(
        "media file ended %d bytes before the promised length (%s); connection closed",
        end - size,
        getattr(f, "name", "?"),
    )
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client has gone already


class RawFile:
    """An open descriptor with what Bounded and a server's file wrapper use of a file: less than
    io.FileIO costs to make (its fstat), for the direct path's answers."""

    __slots__ = ("fd", "name")

    def __init__(self, fd: int) -> None:
        self.fd = self.name = fd

    def fileno(self) -> int:
        if self.fd < 0:
            raise ValueError("I/O operation on closed file")
        return self.fd

    def read(self, n: int) -> bytes:
        return os.read(self.fileno(), n)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class _Multipart:
    """The body of a multipart/byteranges answer, read part by part; closes the file at the end."""

    def __init__(
        self, f: IO[bytes], parts: list[ranges.Part], tail: bytes, sock: socket.socket | None
    ) -> None:
        self.f = f
        self.sock = sock
        self.end = max(part.range.start + part.range.length for part in parts)
        self.sent = False
        self.chunks = self._chunks(parts, tail)

    def _chunks(self, parts: list[ranges.Part], tail: bytes) -> Iterator[bytes]:
        for part in parts:
            yield part.head
            self.f.seek(part.range.start)
            body = Bounded(self.f, part.range.length)
            yield from body
            if body.remaining:
                return  # the file ended early: close() says so and ends the connection
        self.sent = True  # every part was read to its end
        yield tail

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close_checked(self.f, 0 if self.sent else self.end, self.sock)


def _multipart(
    f: IO[bytes],
    size: int,
    byte_ranges: tuple[ranges.ByteRange, ...],
    content_type: str,
    headers: dict[str, str],
    sock: socket.socket | None = None,
) -> Response:
    boundary = secrets.token_hex(16)
    parts, tail, total = ranges.multipart(byte_ranges, size, content_type, boundary)
    headers["Content-Length"] = str(total)
    return Response(
        _Multipart(f, parts, tail, sock),
        206,
        headers,
        content_type=f"multipart/byteranges; boundary={boundary}",
        direct_passthrough=True,
    )
