"""A file truncated while it streams: the connection closes at once (issue 20, item 5).

The answer promised Content-Length bytes; when the file ends before that, nothing more can come,
so the client must see the connection close right away (and the server log it), not wait for
gunicorn's keep-alive timeout with a response that can never complete.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from app import create_app
from services import db as dbmod
from services.library.scanner import scan
from tests.conftest import api_token
from tests.server import Gunicorn

PADDING = 48 * 1024 * 1024  # far more than loopback socket buffers hold: the send must block
CUT_TO = 4 * 1024 * 1024


@pytest.mark.parametrize("ranges", [None, "bytes=0-99,1000000-"], ids=["whole", "multipart"])
def test_truncated_mid_stream_closes_within_a_second(
    media: dict[str, Path], tmp_path: Path, ranges: str | None
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    video = lib / "big.mp4"
    shutil.copy2(media["h264_mp4"], video)
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data"), "watch": "off"})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    media_hash = db.execute("SELECT media_hash FROM media").fetchone()[0]
    db.close()
    token = api_token(settings.data_dir)
    with open(video, "ab") as f:  # the file grows after the scan: a long recording, say
        f.truncate(os.path.getsize(video) + PADDING)
    server = Gunicorn()
    env = {
        "LVS_MEDIA_DIRS": str(lib),
        "LVS_DATA_DIR": str(settings.data_dir),
        "LVS_BACKGROUND": "off",
        "LVS_WORKERS": "1",
        "LVS_THREADS": "2",
    }
    server.start(env, tmp_path / "gunicorn.log", ready="/livez")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(
            (
                f"GET /media/{media_hash}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n"
                + (f"Range: {ranges}\r\n" if ranges else "")
                + "\r\n"
            ).encode()
        )
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(65536)
        head, _, body = got.partition(b"\r\n\r\n")
        promised = int(next(
            line.split(b":")[1] for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ))  # fmt: skip
        assert promised > 2 * CUT_TO
        time.sleep(0.5)  # the server is now blocked sending, the socket buffers full
        os.truncate(video, CUT_TO)  # the file shrinks under it
        received = len(body)
        last_data = time.monotonic()
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
            last_data = time.monotonic()
        closed_after = time.monotonic() - last_data
        sock.close()
    finally:
        server.stop()
    assert received < promised
    assert closed_after < 1.0, f"the client waited {closed_after:.1f} s for bytes that never come"
    text = (tmp_path / "gunicorn.log").read_text()
    assert "ended" in text and "before the promised length" in text, text[-2000:]
