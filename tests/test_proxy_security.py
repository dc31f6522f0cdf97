"""The server's side of a rogue worker (issue 18 security review: F1, F2, F4).

A worker is another machine on the LAN: what it answers, and what it writes into the shared
transcode folder, must not reach the viewer as anything but a segment, nor hold the server's
threads. Real HTTP servers on a local port stand in for the rogue worker; real files and
symbolic links for the share.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.playback import remote
from services.playback.remote import Placement, RemoteTranscoder
from services.previews import batch
from services.previews.batch_deliveries import Deliveries

SECRET = "0123456789abcdef-review-secret"


def serve(handler: type) -> http.server.ThreadingHTTPServer:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def fetch(srv: http.server.ThreadingHTTPServer) -> remote.Upstream:
    fake = SimpleNamespace(
        cfg=SimpleNamespace(node_secret=SECRET),
        _alive=lambda w: True,
        _await_answer=lambda conn, p: None,
    )
    p = Placement("evil", f"http://127.0.0.1:{srv.server_port}", time.time(), 0.0)
    return RemoteTranscoder._fetch(fake, p, "0123456789abcdef", 3, None)  # type: ignore[arg-type]


class Rogue(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the class's status, Content-Type and body."""

    status, ctype, body = 200, "text/html", b"<script src=4.ts></script>"
    length: int | None = None  # Content-Length when not len(body)

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(self.status)
        self.send_header("Content-Type", self.ctype)
        self.send_header("X-LVS-Worker", "evil-host.lan")
        self.send_header("Content-Length", str(self.length or len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a) -> None:  # type: ignore[no-untyped-def]
        pass


# ---- F2: the proxy passed the worker's Content-Type and status to the viewer ----


def test_proxied_segment_is_always_video_mp2t() -> None:
    from blueprints.hls import _proxied

    srv = serve(Rogue)
    try:
        up = fetch(srv)
        response = _proxied(up)
        assert response.mimetype == "video/mp2t", response.headers
        assert "X-LVS-Worker" not in response.headers  # a worker's id names its host
        up.close()
    finally:
        srv.shutdown()


@pytest.mark.parametrize("status", [302, 401, 500])
def test_a_worker_status_other_than_a_segments_is_a_502(status: int, caplog) -> None:
    from blueprints.hls import _proxied
    from services.errors import TranscodeFailed

    srv = serve(type("R", (Rogue,), {"status": status}))
    try:
        up = fetch(srv)
        with pytest.raises(TranscodeFailed):  # app.py answers it 502
            _proxied(up)
        assert f"status {status}" in caplog.text
    finally:
        srv.shutdown()


def test_a_segment_larger_than_the_cap_is_a_502(caplog) -> None:
    from blueprints.hls import _proxied
    from services.errors import TranscodeFailed

    srv = serve(type("R", (Rogue,), {"length": remote.MAX_SEGMENT + 1}))
    try:
        up = fetch(srv)
        with pytest.raises(TranscodeFailed):
            _proxied(up)
        assert "Content-Length" in caplog.text
    finally:
        srv.shutdown()


# ---- F4: a worker that trickles a body held a server thread for ever ----


class Trickle(http.server.BaseHTTPRequestHandler):
    """Sends a segment's headers, then its body one byte every 0.1 s (never a read timeout);
    `in_headers`: its status line, then a header one byte every 0.1 s."""

    protocol_version = "HTTP/1.1"
    in_headers = False

    def do_GET(self) -> None:  # noqa: N802
        if self.in_headers:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.send_header("Content-Length", str(10**6))  # under every cap
            self.end_headers()
        try:
            for _ in range(150):
                self.wfile.write(b"G")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, *a) -> None:  # type: ignore[no-untyped-def]
        pass


TrickleHead = type("TrickleHead", (Trickle,), {"in_headers": True})


def drain(chunks) -> None:  # type: ignore[no-untyped-def]
    try:
        for _ in chunks:
            pass
    except OSError:
        pass  # cut off: what the fix does


def test_a_trickling_worker_is_cut_off(monkeypatch) -> None:
    monkeypatch.setattr(remote, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(remote, "BODY_TIME", 2.0, raising=False)
    srv = serve(Trickle)
    try:
        up = fetch(srv)
        t = threading.Thread(target=drain, args=(up.chunks(),), daemon=True)
        t.start()
        t.join(6.0)
        alive = t.is_alive()
        up.close()
        assert not alive, "the proxy is still streaming a trickling worker's body"
    finally:
        srv.shutdown()


def test_a_worker_trickling_its_headers_is_lost(monkeypatch) -> None:
    monkeypatch.setattr(remote, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(remote, "HEAD_TIME", 1.0, raising=False)
    srv = serve(TrickleHead)
    try:
        started = time.monotonic()
        with pytest.raises(remote.WorkerLost):  # main: waits out the 15 s trickle, then a 200
            fetch(srv)
        assert time.monotonic() - started < 4.0
    finally:
        srv.shutdown()


@pytest.mark.parametrize("handler", [Trickle, TrickleHead], ids=["body", "headers"])
def test_a_trickling_worker_delivery_is_cut_off(handler: type, monkeypatch) -> None:
    from services.previews import batch_deliveries

    monkeypatch.setattr(batch_deliveries, "TIMEOUT", 1.0)
    srv = serve(handler)
    d = batch.Done("w", "0123456789abcdef", "thumbnail", "made", "", 1.0, {"thumb.jpg": "0" * 64})
    fake = SimpleNamespace(settings=SimpleNamespace(node_secret=SECRET))
    url = f"http://127.0.0.1:{srv.server_port}"
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # main: no deadline, the trickle was waited out
            Deliveries._fetch(fake, url, d, "thumb.jpg", started + 2.0)  # type: ignore[arg-type]
        assert time.monotonic() - started < 4.0
    finally:
        srv.shutdown()


# ---- F1: LVS_TRANSCODE_SHARED: a worker (it writes the share) plants a symlink ----


def share_with(tmp_path: Path, plant) -> tuple[SimpleNamespace, SimpleNamespace]:  # type: ignore[no-untyped-def]
    share = tmp_path / "share"
    (share / "0123456789abcdef" / "k").mkdir(parents=True)
    plant(share)
    fake = SimpleNamespace(shared=share, _touch=lambda *a, **k: None)
    s = SimpleNamespace(id="fedcba9876543210", media_hash="0123456789abcdef", key="k")
    return fake, s


def server_file(tmp_path: Path) -> Path:
    secret = tmp_path / "server-data" / "lvs.db"
    secret.parent.mkdir()
    secret.write_bytes(b"the server's database, password hashes and session tokens")
    return secret


def test_a_symlink_in_the_shared_folder_is_not_served(tmp_path) -> None:
    secret = server_file(tmp_path)
    fake, s = share_with(tmp_path, lambda sh: (sh / s_path("5.ts")).symlink_to(secret))
    found = RemoteTranscoder._in_share(fake, s, 5)  # type: ignore[arg-type]
    assert found is None, f"the server would serve {found}"


def test_a_symlinked_folder_in_the_share_is_not_followed(tmp_path) -> None:
    elsewhere = tmp_path / "server-data"
    elsewhere.mkdir()
    (elsewhere / "5.ts").write_bytes(b"not the share's")

    def plant(sh: Path) -> None:
        (sh / "0123456789abcdef" / "k").rmdir()
        (sh / "0123456789abcdef" / "k").symlink_to(elsewhere)

    fake, s = share_with(tmp_path, plant)
    assert RemoteTranscoder._in_share(fake, s, 5) is None  # type: ignore[arg-type]


def test_a_hard_link_in_the_shared_folder_is_not_served(tmp_path) -> None:
    # Where the share lies on the server's own filesystem, a worker that writes it could link
    # a server file into it under a segment's name.
    secret = server_file(tmp_path)
    fake, s = share_with(tmp_path, lambda sh: os.link(secret, sh / s_path("5.ts")))
    assert RemoteTranscoder._in_share(fake, s, 5) is None  # type: ignore[arg-type]


def test_a_fifo_in_the_shared_folder_neither_hangs_nor_is_served(tmp_path) -> None:
    fake, s = share_with(tmp_path, lambda sh: os.mkfifo(sh / s_path("5.ts")))
    assert RemoteTranscoder._in_share(fake, s, 5) is None  # type: ignore[arg-type]


def test_a_segment_in_the_shared_folder_comes_as_an_open_descriptor(tmp_path) -> None:
    fake, s = share_with(tmp_path, lambda sh: (sh / s_path("5.ts")).write_bytes(b"G" * 188))
    fd = RemoteTranscoder._in_share(fake, s, 5)  # type: ignore[arg-type]
    assert isinstance(fd, int)
    try:
        assert os.read(fd, 1000) == b"G" * 188
    finally:
        os.close(fd)


def s_path(name: str) -> str:
    return f"0123456789abcdef/k/{name}"
