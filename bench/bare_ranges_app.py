"""B5's ceiling: the least a WSGI app can do to answer a Range request for one file.

No sign-in, no database, no lookup, no conditional requests: parse `bytes=A-B`, open, seek and
hand the descriptor to `wsgi.file_wrapper` (sendfile). Run under the same gunicorn worker class,
workers and threads as the real app, it shows what gunicorn itself allows on this machine.

With B5_HEADERS=ours it answers with the header set the app's answer carries (validators,
caching, content type and disposition, the security headers, Vary, a request id: twelve instead
of two, made from the file's stat as the app makes them), so the bytes on the wire are the
app's: what is left between the two is the app's own work, not what its answer costs the
server's and the client's HTTP code to write and read.

    B5_FILE=/path/to/file [B5_HEADERS=ours] gunicorn -k gunicorn_worker.Worker bench.bare_ranges_app:app
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

FILE = os.environ.get("B5_FILE", "")
OURS = os.environ.get("B5_HEADERS") == "ours"
RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def _our_headers(st: os.stat_result) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return the headers before and after Content-Range/Content-Length in the app's answer."""
    name = os.path.basename(FILE)
    return [
        ("Accept-Ranges", "bytes"),
        ("ETag", f'"{"0" * 16}-{st.st_size:x}-{st.st_mtime_ns:x}"'),
        ("Last-Modified", formatdate(int(st.st_mtime), usegmt=True)),
        ("Cache-Control", "private, no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Disposition", f"inline; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"),
    ], [("Content-Type", "video/mp4"), ("Referrer-Policy", "same-origin"), ("Vary", "Cookie")]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer `Range: bytes=A-B` with 206 and those bytes; anything else with the whole file."""
    f = open(FILE, "rb", buffering=0)  # noqa: SIM115 - the server closes it after sendfile
    st = os.fstat(f.fileno())
    size = st.st_size
    before, after = _our_headers(st) if OURS else ([], [])
    if OURS:
        after = [*after, ("X-Request-ID", f"{random.getrandbits(48):012x}")]
    m = RANGE.fullmatch(environ.get("HTTP_RANGE", ""))
    if m and int(m[1]) < size:
        start, end = int(m[1]), min(int(m[2]), size - 1)
        f.seek(start)
        headers = [("Content-Range", f"bytes {start}-{end}/{size}")]
        length = [("Content-Length", str(end - start + 1))]
        start_response("206 Partial Content", [*before, *headers, *length, *after])
    else:
        start_response("200 OK", [*before, ("Content-Length", str(size)), *after])
    return environ["wsgi.file_wrapper"](f, 256 * 1024)
