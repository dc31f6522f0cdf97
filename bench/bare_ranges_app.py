"""B5's ceiling: the least a WSGI app can do to answer a Range request for one file.

No sign-in, no database, no lookup, no conditional requests: parse `bytes=A-B`, open, seek and
hand the descriptor to `wsgi.file_wrapper` (sendfile). Run under the same gunicorn worker class,
workers and threads as the real app, it shows what gunicorn itself allows on this machine.

    B5_FILE=/path/to/file gunicorn -k gunicorn_worker.Worker bench.bare_ranges_app:app
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

FILE = os.environ.get("B5_FILE", "")
RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer `Range: bytes=A-B` with 206 and those bytes; anything else with the whole file."""
    f = open(FILE, "rb", buffering=0)  # noqa: SIM115 - the server closes it after sendfile
    size = os.fstat(f.fileno()).st_size
    m = RANGE.fullmatch(environ.get("HTTP_RANGE", ""))
    if m and int(m[1]) < size:
        start, end = int(m[1]), min(int(m[2]), size - 1)
        f.seek(start)
        headers = [("Content-Range", f"bytes {start}-{end}/{size}")]
        start_response("206 Partial Content", [("Content-Length", str(end - start + 1)), *headers])
    else:
        start_response("200 OK", [("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 256 * 1024)
