"""Media routes on a real scanned library: Range/conditional answers, hostile paths, storage faults,
the sendfile path under gunicorn, and which originals a browser can play."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import string
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from app import create_app
from services import db as dbmod
from services.library.probe import probe_file
from services.library.scanner import scan
from services.playback.playability import can_play
from services.previews import sprites, thumbnails
from tests.conftest import api_token, signed_in
from tests.server import Gunicorn

UNICODE_NAME = 'ünïcødé 日本語 "q" #1 100%.avi'
SECRET = b"outside the library " * 512

# Library layout: key in the media corpus -> path in the library. Each file has its own content,
# so its own media_hash; the tests that break a file each break their own.
LAYOUT = {
    "h264_mp4": "Movies/h264.mp4",
    "vp9_webm": "Movies/vp9.webm",
    "hevc_mkv": "Movies/hevc.mkv",
    "mpeg4_avi": f"Movies/{UNICODE_NAME}",
    "black_start_mp4": "Keep/keep.mp4",
    "rotated_mp4": "Gone/gone.mp4",
    "rotated_mov": "Swap/swap.mov",
    "h264_mkv": "Folder/inner.mkv",
    "subtitle_mkv": "Flaky/flaky.mkv",
}


@dataclass
class Served:
    app: Flask
    lib: Path
    secret_dir: Path
    hashes: dict[str, str]  # library path -> media_hash

    def client(self) -> FlaskClient:
        return signed_in(self.app)

    def url(self, rel: str, suffix: str = "file") -> str:
        return f"/media/{self.hashes[rel]}/{suffix}"


_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str | bytes | os.PathLike):
        if isinstance(args[2], int) and args[2] & os.O_PATH:
            return  # resolves a name, opens nothing for reading (open(2): "not opened")
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Record the real path of every file this process opens inside the block."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


@pytest.fixture(scope="module")
def served(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Served:
    base = tmp_path_factory.mktemp("served")
    lib = base / "lib"
    # A sibling sharing the library's name as a prefix: a naive startswith() check lets it in.
    secret_dir = base / "lib-secret"
    secret_dir.mkdir()
    (secret_dir / "secret.mp4").write_bytes(SECRET)
    for key, rel in LAYOUT.items():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(media[key], lib / rel)
    (lib / "Movies" / "link.mp4").symlink_to(lib / "Keep" / "keep.mp4")  # stays inside: served
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(base / "data"), "watch": "off"})
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    report = scan(db, app.config["SETTINGS"])
    assert report.failed == 0, report.failures
    hashes = dict(
        db.execute(
            "SELECT f.name, m.media_hash FROM files f JOIN media m ON m.id = f.media_id"
        ).fetchall()
    )
    db.close()
    by_rel = {rel: hashes[rel.rsplit("/", 1)[-1]] for rel in LAYOUT.values()}
    return Served(app, lib, secret_dir, by_rel)


@pytest.fixture
def client(served: Served) -> FlaskClient:
    return served.client()


H264 = LAYOUT["h264_mp4"]


def data_of(served: Served, rel: str) -> bytes:
    return (served.lib / rel).read_bytes()


# --- the whole file, headers ----------------------------------------------------------------


def test_whole_file_with_validators(served: Served, client: FlaskClient) -> None:
    data = data_of(served, H264)
    r = client.get(served.url(H264))
    assert r.status_code == 200
    assert r.data == data
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"].startswith('"' + served.hashes[H264])
    assert r.headers["Last-Modified"].endswith(" GMT")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize(
    ("rel", "content_type"),
    [
        (LAYOUT["vp9_webm"], "video/webm"),
        (LAYOUT["hevc_mkv"], "video/x-matroska"),
        (LAYOUT["mpeg4_avi"], "video/x-msvideo"),
        (LAYOUT["rotated_mov"], "video/quicktime"),
    ],
)
def test_content_type_from_the_extension(served: Served, rel: str, content_type: str) -> None:
    assert served.client().head(served.url(rel)).headers["Content-Type"] == content_type


def test_download_names_the_file_in_utf8(served: Served, client: FlaskClient) -> None:
    rel = LAYOUT["mpeg4_avi"]
    r = client.get(served.url(rel) + "?download=1")
    assert r.status_code == 200 and r.data == data_of(served, rel)
    value = r.headers["Content-Disposition"]
    assert value.startswith("attachment;")
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback and fallback.endswith(".avi")
    encoded = value.split("filename*=UTF-8''", 1)[1]
    attr_char = set(string.ascii_letters + string.digits + "!#$&+-.^_`|~%")  # RFC 5987 + pct
    assert set(encoded) <= attr_char, encoded
    assert urllib.parse.unquote(encoded, encoding="utf-8") == UNICODE_NAME


def test_head_sends_headers_only(served: Served, client: FlaskClient) -> None:
    size = len(data_of(served, H264))
    r = client.head(served.url(H264))
    assert r.status_code == 200 and r.data == b""
    assert r.headers["Content-Length"] == str(size)
    r = client.head(served.url(H264), headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.data == b""
    assert r.headers["Content-Length"] == "10"
    assert r.headers["Content-Range"] == f"bytes 10-19/{size}"


# --- ranges, in the style of Go's ServeFileRangeTests ------------------------------------------

# name -> (Range header, expected inclusive ranges) for a file of n bytes; [] means 416.
HTTP_RANGES = {
    "first five": lambda n: ("bytes=0-4", [(0, 4)]),
    "open-ended": lambda n: ("bytes=2-", [(2, n - 1)]),
    "suffix": lambda n: ("bytes=-5", [(n - 5, n - 1)]),
    "at 99 %": lambda n: (
        f"bytes={n * 99 // 100}-{n * 99 // 100 + 99}",
        [(n * 99 // 100, n * 99 // 100 + 99)],
    ),
    "last byte": lambda n: (f"bytes={n - 1}-", [(n - 1, n - 1)]),
    "end past EOF clamps": lambda n: (f"bytes={n - 10}-{n + 1000}", [(n - 10, n - 1)]),
    "two: multipart": lambda n: (f"bytes=0-9,{n - 10}-", [(0, 9), (n - 10, n - 1)]),
    "three, unordered": lambda n: ("bytes=100-109,0-0,50-59", [(0, 0), (50, 59), (100, 109)]),
    "overlapping: one": lambda n: ("bytes=0-99,50-149,-0", [(0, 149)]),
    "start at EOF": lambda n: (f"bytes={n}-", []),
    "start past EOF": lambda n: (f"bytes={n + 5}-{n + 10}", []),
    "zero suffix": lambda n: ("bytes=-0", []),
}


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str, bytes]]:
    """Return (Content-Type, Content-Range, data) of each part of a multipart/byteranges body."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    chunks = body.split(b"--" + boundary)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n", (chunks[0][:40], chunks[-1][:40])
    parts = []
    for chunk in chunks[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((fields["Content-Type"], fields["Content-Range"], data[:-2]))
    return parts


@pytest.mark.parametrize("name", list(HTTP_RANGES))
def test_range_table_over_http(served: Served, client: FlaskClient, name: str) -> None:
    data = data_of(served, H264)
    n = len(data)
    header, expected = HTTP_RANGES[name](n)
    r = client.get(served.url(H264), headers={"Range": header})
    if not expected:
        assert r.status_code == 416
        assert r.headers["Content-Range"] == f"bytes */{n}"
        return
    assert r.status_code == 206
    assert r.headers["Content-Length"] == str(len(r.data))
    if len(expected) == 1:
        start, end = expected[0]
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/{n}"
        assert r.data == data[start : end + 1]
        return
    assert r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    parts = parse_multipart(r.data, r.headers["Content-Type"])
    assert [(t, c) for t, c, _ in parts] == [
        ("video/mp4", f"bytes {s}-{e}/{n}") for s, e in expected
    ]
    assert [d for _, _, d in parts] == [data[s : e + 1] for s, e in expected]


def test_unknown_unit_and_bad_syntax_send_everything(served: Served, client: FlaskClient) -> None:
    data = data_of(served, H264)
    for header in ("items=0-9", "bytes=9-0", "bytes=0x0-9"):
        r = client.get(served.url(H264), headers={"Range": header})
        assert (r.status_code, r.data) == (200, data), header


def test_conditionals_over_http(served: Served, client: FlaskClient) -> None:
    data = data_of(served, H264)
    first = client.get(served.url(H264))
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    url = served.url(H264)

    r = client.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.data == b"" and r.headers["ETag"] == etag
    # If-None-Match with a Range: the 304 wins.
    r = client.get(url, headers={"If-None-Match": etag, "Range": "bytes=0-9"})
    assert r.status_code == 304
    r = client.get(url, headers={"If-Modified-Since": modified})
    assert r.status_code == 304
    # If-Range with the strong tag keeps the range; its weak form must not (RFC 9110 §13.1.5).
    r = client.get(url, headers={"If-Range": etag, "Range": "bytes=0-9"})
    assert (r.status_code, r.data) == (206, data[:10])
    r = client.get(url, headers={"If-Range": "W/" + etag, "Range": "bytes=0-9"})
    assert (r.status_code, r.data) == (200, data)
    r = client.get(url, headers={"If-Range": modified, "Range": "bytes=0-9"})
    assert (r.status_code, r.data) == (206, data[:10])
    r = client.get(url, headers={"If-Match": '"other"'})
    assert r.status_code == 412


def test_etag_changes_when_the_file_is_rewritten(served: Served, tmp_path: Path) -> None:
    rel = LAYOUT["black_start_mp4"]
    path = served.lib / rel
    client = served.client()
    before = client.head(served.url(rel)).headers["ETag"]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    try:
        r = client.get(served.url(rel), headers={"If-None-Match": before})
        assert r.status_code == 200 and r.headers["ETag"] != before
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# --- the sendfile path -------------------------------------------------------------------------


def test_range_goes_to_the_servers_file_wrapper_at_its_offset(served: Served) -> None:
    """gunicorn sendfile()s a FileWrapper from the descriptor's offset for Content-Length bytes
    (gunicorn/http/wsgi.py Response.sendfile); the app must hand it one, positioned."""
    from gunicorn.http.wsgi import FileWrapper

    data = data_of(served, H264)
    start = len(data) * 99 // 100
    builder = EnvironBuilder(
        path=served.url(H264),
        headers={"Range": f"bytes={start}-{start + 99}", **bearer(served.app)},
    )
    environ = builder.get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    seen: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = served.app.wsgi_app(environ, start_response)
    try:
        assert isinstance(body, FileWrapper)
        assert seen["status"] == "206 PARTIAL CONTENT"
        assert seen["headers"]["Content-Length"] == "100"
        fd = body.filelike.fileno()
        assert os.lseek(fd, 0, os.SEEK_CUR) == start
        # A server that cannot sendfile (TLS) iterates: it must get the range, not the rest.
        assert b"".join(body) == data[start : start + 100]
    finally:
        body.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the response


def bearer(app: Flask) -> dict[str, str]:
    """Return the header a cookie-less client signs in with."""
    return {"Authorization": "Bearer " + api_token(app.config["SETTINGS"].data_dir)}


@contextmanager
def real_gunicorn(served: Served, threads: int = 2) -> Iterator[int]:
    """Run the app under a real gunicorn (gunicorn.conf.py, its worker class); yield its port."""
    settings = served.app.config["SETTINGS"]
    env = {
        "LVS_MEDIA_DIRS": str(served.lib),
        "LVS_DATA_DIR": str(settings.data_dir),
        "LVS_BACKGROUND": "off",
        "LVS_WORKERS": "1",
        "LVS_THREADS": str(threads),
    }
    server = Gunicorn()
    server.start(env, settings.data_dir / "gunicorn.log", ready="/livez")
    try:
        yield server.port
    finally:
        server.stop()


def test_real_gunicorn_serves_ranges_by_sendfile(served: Served) -> None:
    with real_gunicorn(served) as port:
        data = data_of(served, H264)
        start = len(data) * 99 // 100
        conn = HTTPConnection("127.0.0.1", port, timeout=10)
        auth = bearer(served.app)
        conn.request("GET", served.url(H264), headers={"Range": f"bytes={start}-", **auth})
        r = conn.getresponse()
        assert r.status == 206
        assert r.read() == data[start:]
        conn.request(
            "GET", served.url(H264), headers=auth
        )  # same connection: keep-alive survived the range
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, data)
        conn.request("GET", "/media/0000000000000000/file", headers=auth)
        r = conn.getresponse()
        assert (r.status, r.read()) == (404, b"no such media\n")
        # A player's burst: many ranges back to back on one connection, each one right.
        for i in range(40):
            first = (i * 7919) % (len(data) - 1000)
            conn.request("GET", served.url(H264), headers={"Range": f"bytes={first}-", **auth})
            r = conn.getresponse()
            assert (r.status, r.read()) == (206, data[first:])
        conn.close()


def test_real_gunicorn_pipelined_requests_and_a_free_thread(served: Served) -> None:
    """The worker keeps a busy connection on its thread (gunicorn_worker.py): requests sent
    together are all answered, and a quiet kept-alive client never holds the only thread."""
    auth = bearer(served.app)["Authorization"]
    data = data_of(served, H264)
    with real_gunicorn(served, threads=1) as port:
        url = served.url(H264)
        one = f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                (one + "Range: bytes=0-9\r\n\r\n" + one + "Range: bytes=10-19\r\n\r\n").encode()
            )
            got = b""
            while got.count(b"HTTP/1.1 206") < 2 or not got.endswith(data[10:20]):
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
            assert data[0:10] in got and got.endswith(data[10:20])
        quiet = HTTPConnection("127.0.0.1", port, timeout=10)
        quiet.request("GET", url, headers={"Range": "bytes=0-0", "Authorization": auth})
        assert quiet.getresponse().read() == data[:1]  # now kept alive, and silent
        began = time.monotonic()
        other = HTTPConnection("127.0.0.1", port, timeout=10)
        other.request("GET", url, headers={"Range": "bytes=0-0", "Authorization": auth})
        assert other.getresponse().read() == data[:1]
        assert time.monotonic() - began < 1.0  # the one thread was not kept by the quiet one
        quiet.close()
        other.close()


# --- unknown and hostile paths ----------------------------------------------------------------

HOSTILE_URLS = [
    "/media/..%2F..%2Flib-secret%2Fsecret.mp4/file",
    "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
    "/media/..%5C..%5Clib-secret%5Csecret.mp4/file",
    "/media/..\\..\\lib-secret\\secret.mp4/file",
    "/media/../lib-secret/secret.mp4",
    "/media/{hash}%2F..%2F..%2Flib-secret%2Fsecret.mp4/file",
    "/media/{hash}/../../lib-secret/secret.mp4",
    "/media/{hash}/file/../../../lib-secret/secret.mp4",
    "/media/{HASH}/file",
    "/media/{hash}0/file",
    "/media/{short}/file",
    "/media/{hash}%00/file",
    "/media/{hash}%20/file",
    "/media/0000000000000000/file",
    "/media/0000000000000000/thumb",
    "/media/..%2F..%2Fetc/thumb",
    "/media/zzzzzzzzzzzzzzzz/sprite.jpg",
    "/media/%2e%2e/sprite.vtt",
]


@pytest.mark.parametrize("template", HOSTILE_URLS)
def test_hostile_urls_are_404_and_open_nothing_outside(
    served: Served, client: FlaskClient, template: str
) -> None:
    h = served.hashes[H264]
    url = template.format(hash=h, HASH=h.upper(), short=h[:15])
    with opened_files() as opened:
        r = client.get(url)
    assert r.status_code == 404, url
    assert SECRET[:20] not in r.data
    assert not [p for p in opened if p.startswith(str(served.secret_dir))]
    assert not [p for p in opened if p.startswith("/etc/")]


def _outside(served: Served, opened: list[str]) -> list[str]:
    lib = str(served.lib) + os.sep
    data = str(served.app.config["SETTINGS"].data_dir) + os.sep
    return [p for p in opened if not p.startswith((lib, data))]


def test_symlinked_file_inside_the_library_is_served(served: Served, client: FlaskClient) -> None:
    db = dbmod.connect(served.app.config["SETTINGS"].db_path)
    h = db.execute(
        "SELECT m.media_hash FROM media m JOIN files f ON f.media_id = m.id "
        "WHERE f.name = 'link.mp4'"
    ).fetchone()[0]
    db.close()
    r = client.get(f"/media/{h}/file")
    assert r.status_code == 200 and r.data == data_of(served, LAYOUT["black_start_mp4"])


def test_file_swapped_for_a_symlink_out_of_the_library(served: Served, client: FlaskClient) -> None:
    rel = LAYOUT["rotated_mov"]
    path = served.lib / rel
    kept = path.read_bytes()
    path.unlink()
    path.symlink_to(served.secret_dir / "secret.mp4")
    try:
        with opened_files() as opened:
            r = client.get(served.url(rel))
        assert r.status_code == 404
        assert not _outside(served, opened)
    finally:
        path.unlink()
        path.write_bytes(kept)


@pytest.mark.parametrize("swap", ["fifo", "device"])
def test_file_swapped_for_a_fifo_or_a_device_is_never_opened(
    served: Served, client: FlaskClient, swap: str
) -> None:
    """A FIFO would block a reader forever; a device could act on open. Neither is opened."""
    rel = LAYOUT["rotated_mov"]
    path = served.lib / rel
    kept = path.read_bytes()
    path.unlink()
    if swap == "fifo":
        os.mkfifo(path)
    else:
        (served.lib / "Swap" / "zero").symlink_to("/dev/zero")
        path.symlink_to(served.lib / "Swap" / "zero")
    try:
        with opened_files() as opened:
            began = time.monotonic()
            r = client.get(served.url(rel))
        assert r.status_code == 404 and time.monotonic() - began < 5
        assert not _outside(served, opened) and str(path) not in opened
    finally:
        path.unlink()
        (served.lib / "Swap" / "zero").unlink(missing_ok=True)
        path.write_bytes(kept)


def test_folder_swapped_for_a_sibling_sharing_its_prefix(
    served: Served, client: FlaskClient
) -> None:
    """lib/Folder -> lib-secret: "…/lib-secret/inner.mkv".startswith("…/lib") is True."""
    rel = LAYOUT["h264_mkv"]
    folder = served.lib / "Folder"
    (served.secret_dir / "inner.mkv").write_bytes(SECRET)
    folder.rename(served.lib / "Folder.away")
    folder.symlink_to(served.secret_dir)
    try:
        with opened_files() as opened:
            r = client.get(served.url(rel))
        assert r.status_code == 404 and SECRET[:20] not in r.data
        assert not _outside(served, opened)
    finally:
        folder.unlink()
        (served.lib / "Folder.away").rename(folder)


def test_a_recorded_path_that_climbs_out_is_refused(served: Served, client: FlaskClient) -> None:
    """Even a database row pointing out of the library (a bug, a restored backup) opens nothing."""
    db = dbmod.connect(served.app.config["SETTINGS"].db_path)
    with dbmod.write(db):
        db.execute(
            "INSERT INTO media (media_hash, kind, size, added_at) VALUES ('00000000deadbeef', "
            "'video', 1, 0)"
        )
        db.execute(
            "INSERT INTO files (media_id, library_id, folder_id, path, name, size, mtime_ns, "
            "first_seen) SELECT m.id, f.library_id, f.folder_id, ?, 'secret.mp4', 1, 0, 0 "
            "FROM media m, files f WHERE m.media_hash = '00000000deadbeef' LIMIT 1",
            [b"../lib-secret/secret.mp4"],
        )
    db.close()
    with opened_files() as opened:
        r = client.get("/media/00000000deadbeef/file")
    assert r.status_code == 404 and SECRET[:20] not in r.data
    assert not _outside(served, opened)


def test_a_library_no_longer_configured_is_not_served(served: Served, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    settings = served.app.config["SETTINGS"]
    app = create_app({"media_dirs": [str(other)], "data_dir": str(settings.data_dir)})
    assert signed_in(app).get(served.url(H264)).status_code == 404


def test_a_library_root_that_is_a_symlink_is_judged_by_where_it_points_now(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """The root's resolution was cached and redone only before refusing: once the root was
    re-pointed, a symlink in the new library into the old one (no longer a library) was served."""
    old, new = tmp_path / "disk1", tmp_path / "disk2"
    (old / "Movies").mkdir(parents=True)
    (new / "Movies").mkdir(parents=True)
    shutil.copy2(media["h264_mp4"], old / "Movies" / "a.mp4")
    root = tmp_path / "share"
    root.symlink_to(old)
    app = create_app({"media_dirs": [str(root)], "data_dir": str(tmp_path / "data")})
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    scan(db, app.config["SETTINGS"])
    h = db.execute("SELECT media_hash FROM media").fetchone()[0]
    db.close()
    client = signed_in(app)
    assert client.get(f"/media/{h}/file").status_code == 200  # through the symlinked root
    (new / "Movies" / "a.mp4").symlink_to(old / "Movies" / "a.mp4")  # planted: into disk1
    root.unlink()
    root.symlink_to(new)  # the library moved to disk2; disk1 is not a library any more
    with opened_files() as opened:
        r = client.get(f"/media/{h}/file")
    assert r.status_code == 404
    assert not [p for p in opened if p.startswith(str(old))]


# --- files that went away, storage that does not answer ---------------------------------------


def test_file_gone_from_disk_is_404(served: Served, client: FlaskClient) -> None:
    rel = LAYOUT["rotated_mp4"]
    path = served.lib / rel
    kept = path.read_bytes()
    path.unlink()
    try:
        r = client.get(served.url(rel))
        assert r.status_code == 404 and b"no longer on disk" in r.data
    finally:
        path.write_bytes(kept)
    assert client.get(served.url(rel)).status_code == 200


def _fail(monkeypatch: pytest.MonkeyPatch, name: str, target: Path, err: int, times: int) -> list:
    """Make os.<name> fail with `err` for `target` only, `times` times: NFS/disk trouble."""
    real = getattr(os, name)
    calls: list[str] = []

    def failing(path, *args, **kwargs):
        if os.fsdecode(path) == str(target) and len(calls) < times:
            calls.append(os.fsdecode(path))
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, failing)
    return calls


@pytest.mark.parametrize(("call", "err"), [("open", errno.ESTALE), ("open", errno.EIO)])
def test_storage_errors_answer_503_with_retry_after(
    served: Served, monkeypatch: pytest.MonkeyPatch, call: str, err: int
) -> None:
    rel = LAYOUT["subtitle_mkv"]
    calls = _fail(monkeypatch, call, served.lib / rel, err, times=100)
    r = served.client().get(served.url(rel))
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    assert calls  # the fault was met, not bypassed


def test_one_stale_handle_is_retried(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    rel = LAYOUT["subtitle_mkv"]
    calls = _fail(monkeypatch, "open", served.lib / rel, errno.ESTALE, times=1)
    r = served.client().get(served.url(rel))
    assert r.status_code == 200 and r.data == data_of(served, rel)
    assert len(calls) == 1


def test_offline_library_is_503_not_404(media: dict[str, Path], tmp_path: Path) -> None:
    """An unmounted share looks like an empty or missing root: its files come back later."""
    lib = tmp_path / "share"
    lib.mkdir()
    shutil.copy2(media["h264_mp4"], lib / "a.mp4")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data")})
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    scan(db, app.config["SETTINGS"])
    h = db.execute("SELECT media_hash FROM media").fetchone()[0]
    db.close()
    (lib / "a.mp4").unlink()  # the mount point is left, empty
    r = signed_in(app).get(f"/media/{h}/file")
    assert r.status_code == 503 and "Retry-After" in r.headers
    lib.rmdir()  # the mount point itself is gone
    assert signed_in(app).get(f"/media/{h}/file").status_code == 503


# --- can a browser play it? -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "ok", "reason"),
    [
        ("h264_mp4", True, ""),
        ("vp9_webm", True, ""),
        ("rotated_mp4", True, ""),
        ("hevc_mkv", False, "HEVC video needs transcoding"),
        ("h264_mkv", False, "container MKV is not playable in every browser"),
        ("mpeg4_avi", False, "MPEG-4 Part 2 video needs transcoding"),
        ("rotated_mov", False, "container MOV (QuickTime) is not playable in every browser"),
    ],
)
def test_can_play_from_a_real_probe(media: dict[str, Path], key: str, ok: bool, reason: str):
    probe = probe_file(media[key], "video")
    playable = can_play(probe, probe.streams)
    assert playable.ok is ok
    assert reason in playable.reason
    assert bool(playable.reason) is not ok


def test_can_play_reads_database_rows(served: Served) -> None:
    db = dbmod.connect(served.app.config["SETTINGS"].db_path)
    row = db["media"].get(
        db.execute(
            "SELECT id FROM media WHERE media_hash = ?", [served.hashes[LAYOUT["mpeg4_avi"]]]
        ).fetchone()[0]
    )
    streams = list(db["streams"].rows_where("media_id = ?", [row["id"]]))
    db.close()
    ok, reason = can_play(row, streams)
    assert not ok
    assert "MPEG-4 Part 2 video needs transcoding" in reason and "container AVI" in reason


@pytest.mark.parametrize(
    ("row", "streams", "ok", "reason"),
    [
        (
            {"container": "mp4", "video_codec": "h264", "audio_codec": "ac3"},
            [],
            False,
            "AC-3 (Dolby Digital) audio needs transcoding",
        ),
        ({"container": "mp4", "video_codec": "h264", "audio_codec": None}, [], True, ""),
        ({"container": "mp4", "video_codec": "av1", "audio_codec": "opus"}, [], True, ""),
        (
            {"container": "webm", "video_codec": "h264", "audio_codec": "opus"},
            [],
            False,
            "H.264 video is not playable in WebM",
        ),
        (
            {"container": "webm", "video_codec": "vp8", "audio_codec": "aac"},
            [],
            False,
            "AAC audio is not playable in WebM",
        ),
        (
            {"container": "mp4", "video_codec": "h264", "audio_codec": "aac"},
            [{"type": "video", "codec": "h264", "profile": "High 10", "bit_depth": 10}],
            False,
            "10-bit H.264 video needs transcoding",
        ),
        (
            {
                "container": "mp4",
                "video_codec": "h264",
                "audio_codec": "aac",
                "probe_status": "failed",
            },
            [],
            False,
            "could not be read",
        ),
        (
            {"container": None, "video_codec": None, "probe_status": "pending"},
            [],
            False,
            "not been examined",
        ),
        ({"kind": "picture", "container": "jpeg"}, [], True, ""),
        ({"kind": "picture", "container": "heif"}, [], False, "HEIF pictures"),
    ],
)
def test_can_play_rules(row: dict, streams: list, ok: bool, reason: str) -> None:
    playable = can_play(row, streams)
    assert playable.ok is ok and reason in playable.reason


# --- thumbnails and scrub previews ------------------------------------------------------------


def _app_with_jobs(served: Served, mode: str) -> Flask:
    """Return an app on the served library whose background runner is `mode` (inline/off)."""
    from services import background

    settings = served.app.config["SETTINGS"]
    app = create_app(
        {"media_dirs": [str(served.lib)], "data_dir": str(settings.data_dir), "background": mode}
    )
    # What gunicorn.conf.py's post_worker_init does for the worker that runs background work.
    app.extensions["background"] = background.start(app.config["SETTINGS"])
    return app


def test_thumbnail_is_served_with_long_lived_caching(served: Served) -> None:
    rel = LAYOUT["vp9_webm"]
    h = served.hashes[rel]
    dest = thumbnails.thumb_path(served.app.config["SETTINGS"].data_dir, h)
    dest.parent.mkdir(parents=True, exist_ok=True)
    thumbnails.render_thumbnail(str(served.lib / rel), "video", str(dest), 320)
    client = served.client()
    r = client.get(f"/media/{h}/thumb")
    assert r.status_code == 200 and r.data == dest.read_bytes()
    assert r.headers["Content-Type"] == "image/jpeg"
    assert r.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    again = client.get(f"/media/{h}/thumb", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_missing_thumbnail_is_made_on_request(served: Served) -> None:
    rel = LAYOUT["hevc_mkv"]
    h = served.hashes[rel]
    dest = thumbnails.thumb_path(served.app.config["SETTINGS"].data_dir, h)
    dest.unlink(missing_ok=True)
    app = _app_with_jobs(served, "inline")
    try:
        r = signed_in(app).get(f"/media/{h}/thumb")
    finally:
        app.extensions["background"].stop()
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert r.data == dest.read_bytes()
    assert r.data != thumbnails.placeholder_path().read_bytes()
    assert "immutable" in r.headers["Cache-Control"]


def test_missing_thumbnail_without_jobs_is_the_placeholder(served: Served) -> None:
    rel = LAYOUT["mpeg4_avi"]
    h = served.hashes[rel]
    thumbnails.thumb_path(served.app.config["SETTINGS"].data_dir, h).unlink(missing_ok=True)
    app = _app_with_jobs(served, "off")
    client = signed_in(app)
    r = client.get(f"/media/{h}/thumb")
    assert r.status_code == 200 and r.data == thumbnails.placeholder_path().read_bytes()
    assert r.headers["Cache-Control"] == "private, max-age=60"  # the real one may come soon
    assert client.get("/media/00000000000000aa/thumb").status_code == 404


def test_unknown_media_has_no_thumbnail_even_with_jobs(served: Served) -> None:
    app = _app_with_jobs(served, "inline")
    try:
        assert signed_in(app).get("/media/00000000000000aa/thumb").status_code == 404
    finally:
        app.extensions["background"].stop()


def test_scrub_preview_sprite_and_vtt(served: Served) -> None:
    h = served.hashes[H264]
    jpg, vtt = sprites.sprite_paths(served.app.config["SETTINGS"].data_dir, h)
    jpg.unlink(missing_ok=True)
    vtt.unlink(missing_ok=True)
    off = _app_with_jobs(served, "off")
    assert signed_in(off).get(f"/media/{h}/sprite.vtt").status_code == 404
    app = _app_with_jobs(served, "inline")
    try:
        client = signed_in(app)
        r = client.get(f"/media/{h}/sprite.vtt")
        assert r.status_code == 200 and r.mimetype == "text/vtt"
        text = r.data.decode()
        assert text.startswith("WEBVTT") and "sprite.jpg#xywh=" in text
        r = client.get(f"/media/{h}/sprite.jpg")
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
        assert r.data == jpg.read_bytes() and "immutable" in r.headers["Cache-Control"]
    finally:
        app.extensions["background"].stop()
    # Once made, it is served without the runner.
    assert signed_in(off).get(f"/media/{h}/sprite.jpg").status_code == 200
