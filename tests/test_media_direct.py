"""The media file route answered in front of Flask (blueprints/media_direct.py) answers exactly as
the Flask route does, for every kind of request, and keeps the request's metrics and id."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask, request
from werkzeug.test import Client
from werkzeug.wrappers import Response as WResponse

from app import create_app
from blueprints import media as media_routes
from blueprints.access import COOKIE
from blueprints.media_direct import MediaDirect
from services import db as dbmod
from services import metrics
from services.library.scanner import scan
from services.operate import logs
from services.people import apitokens, sessions, users
from services.playback import ranges
from tests.conftest import TEST_PASSWORD, api_token, make_user, session_token
from tests.test_auth import login

# Headers that differ between two answers to the same request by design.
UNSTABLE = {"X-Request-ID", "Date"}


def _build(tmp_path: Path, media: dict[str, Path], **config) -> tuple[Flask, dict[str, str]]:
    lib = tmp_path / "lib"
    (lib / "Movies").mkdir(parents=True, exist_ok=True)
    shutil.copy(media["h264_mp4"], lib / "Movies" / "clip.mp4")
    shutil.copy(media["vp9_webm"], lib / "Movies" / "gone.webm")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data"), **config})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    try:
        scan(db, settings)
        hashes = dict(
            db.execute(
                "SELECT f.name, m.media_hash FROM files f JOIN media m ON m.id = f.media_id"
            ).fetchall()
        )
    finally:
        db.close()
    (lib / "Movies" / "gone.webm").unlink()  # indexed, then gone from disk: 404
    return app, hashes


@pytest.fixture
def served(tmp_path: Path, media: dict[str, Path]) -> tuple[Flask, dict[str, str]]:
    return _build(tmp_path, media)


def _flask_only(app: Flask) -> Client:
    """A client of the app without the direct path: what Flask's own route answers."""
    direct = app.wsgi_app
    assert isinstance(direct, MediaDirect)
    return Client(direct.flask, WResponse, use_cookies=False)


def _same(app: Flask, path: str, method: str = "GET", **kw) -> WResponse:
    """Ask both ways; assert status, headers and body agree; return the direct answer."""
    direct = Client(app.wsgi_app, WResponse, use_cookies=False).open(path, method=method, **kw)
    flask = _flask_only(app).open(path, method=method, **kw)
    assert direct.status == flask.status, (path, kw, direct.data[:200], flask.data[:200])
    got = {k: v for k, v in direct.headers.items() if k not in UNSTABLE}
    want = {k: v for k, v in flask.headers.items() if k not in UNSTABLE}
    if direct.mimetype == "multipart/byteranges":  # a random boundary each time
        b1, b2 = direct.mimetype_params["boundary"], flask.mimetype_params["boundary"]
        assert direct.data.replace(b1.encode(), b"B") == flask.data.replace(b2.encode(), b"B")
        got.pop("Content-Type"), want.pop("Content-Type")
    else:
        assert direct.data == flask.data
    assert got == want, (path, method, kw)
    assert direct.headers["X-Request-ID"]
    return direct


def test_every_kind_of_request_answers_as_flask_does(served) -> None:
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, "viewer")
    cookie = f"{COOKIE}={session_token(data_dir, user.id)}"
    url = f"/media/{hashes['clip.mp4']}/file"
    size = len(
        Client(app.wsgi_app, WResponse, use_cookies=False).get(url, headers={"Cookie": cookie}).data
    )
    assert size > 10_000
    etag = (
        Client(app.wsgi_app, WResponse, use_cookies=False)
        .head(url, headers={"Cookie": cookie})
        .headers["ETag"]
    )
    signed = apitokens.sign_media(app.extensions["media_secret"], user.id, hashes["clip.mp4"])
    expired = apitokens.sign_media(
        app.extensions["media_secret"], user.id, hashes["clip.mp4"], now=time.time() - 10**5
    )
    token = api_token(data_dir, "viewer")
    signed_in = {"Cookie": cookie}
    cases = [
        ({}, {}),  # nobody signed in: the guard's 401
        ({"Accept": "text/html"}, {}),  # a browser: the sign-in redirect
        (signed_in, {}),
        ({**signed_in, "Range": "bytes=0-99"}, {}),
        ({**signed_in, "Range": f"bytes={size - 100}-"}, {}),
        ({**signed_in, "Range": "bytes=-1"}, {}),
        ({**signed_in, "Range": "bytes=-0"}, {}),  # 416
        ({**signed_in, "Range": f"bytes={size}-"}, {}),  # 416
        ({**signed_in, "Range": "bytes=0-9,100-199,50-60"}, {}),  # multipart
        ({**signed_in, "Range": "items=0-1"}, {}),  # unknown unit: whole file
        ({**signed_in, "Range": "bytes=5-2"}, {}),  # invalid: whole file
        ({**signed_in, "If-None-Match": etag}, {}),  # 304
        ({**signed_in, "If-None-Match": etag, "Range": "bytes=0-1"}, {}),  # 304
        ({**signed_in, "If-Match": '"other"'}, {}),  # 412
        ({**signed_in, "If-Range": "W/" + etag, "Range": "bytes=0-1"}, {}),  # weak: 200
        ({**signed_in, "If-Range": etag, "Range": "bytes=0-1"}, {}),
        (signed_in, {"download": "1"}),
        ({"Authorization": f"Bearer {token}"}, {}),
        ({"Authorization": "Bearer not-a-token"}, {}),  # 401 with WWW-Authenticate
        ({"Authorization": "Basic abc"}, {}),
        ({}, signed),
        ({}, expired),
        ({}, {**signed, "s": "0" * 32}),
        ({}, {**signed, "u": "²"}),
        ({}, {**signed, "s": "é" * 32}),
        ({"Cookie": f"{COOKIE}=forged"}, {}),
        ({**signed_in, "Host": "evil.example.com"}, {}),  # refused Host: 400
        ({**signed_in, "X-Request-ID": "abc-123"}, {}),
    ]
    for headers, query in cases:
        for method in ("GET", "HEAD"):
            _same(app, url, method, headers=headers, query_string=query)
    for missing in (f"/media/{hashes['gone.webm']}/file", "/media/0123456789abcdef/file"):
        assert _same(app, missing, headers=signed_in).status_code == 404
    # Other methods and routes are Flask's alone (its pages carry a fresh CSRF token each time);
    # a malformed hash never matches the direct path.
    for method, path, status in (
        ("POST", url, 405),
        ("GET", "/media/0123456789ABCDEF/file", 404),
        ("GET", f"/media/{hashes['clip.mp4']}/thumb", 200),
    ):
        direct = Client(app.wsgi_app, WResponse, use_cookies=False).open(
            path, method=method, headers=signed_in
        )
        flask = _flask_only(app).open(path, method=method, headers=signed_in)
        assert direct.status_code == flask.status_code == status


def test_a_disabled_user_and_a_guest(tmp_path: Path, media: dict[str, Path]) -> None:
    app, hashes = _build(tmp_path, media, guest=True)
    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, "viewer", "dora")
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, user.id)}"}
    url = f"/media/{hashes['clip.mp4']}/file"
    db = dbmod.open_db(data_dir)
    try:
        users.set_disabled(db, user.id, True)
    finally:
        db.close()
    # A guest may watch (LVS_GUEST=on); a disabled user's cookie counts for nothing more.
    assert _same(app, url, headers=cookie).status_code == 200
    assert _same(app, url, headers={"Range": "bytes=0-9"}).status_code == 206
    assert _same(app, url, headers={"Authorization": "Bearer x"}).status_code == 401


def test_the_direct_path_skips_flask_and_keeps_the_metrics(served) -> None:
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    hooks: list[str] = []
    app.before_request(lambda: hooks.append(request.path) and None)
    user = make_user(data_dir, "admin")
    client = Client(app.wsgi_app, WResponse)
    client.set_cookie(COOKIE, session_token(data_dir, user.id))
    url = f"/media/{hashes['clip.mp4']}/file"
    before = metrics.REGISTRY.state()
    started = before["counters"].get("streams_started", 0)
    ended = before["counters"].get("streams_ended", 0)
    answer = client.get(url, headers={"Range": "bytes=0-9", "X-Request-ID": "play-42"})
    assert answer.status_code == 206 and len(answer.data) == 10
    answer.close()  # as a server does once the last byte is sent
    assert answer.headers["X-Request-ID"] == "play-42"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert hooks == []  # Flask's hooks did not run: the direct path answered
    after = metrics.REGISTRY.state()
    assert after["counters"]["streams_started"] == started + 1
    assert after["counters"]["streams_ended"] == ended + 1  # the body was read and closed
    assert metrics.REGISTRY.merged().get("request:media.file").total >= 1
    # What it hands on, Flask answers: its hooks run.
    assert client.get(f"/media/{hashes['gone.webm']}/thumb").status_code in (200, 404)
    assert hooks == [f"/media/{hashes['gone.webm']}/thumb"]


def test_behind_a_proxy_the_forwarded_host_is_checked(tmp_path: Path, media) -> None:
    app, hashes = _build(tmp_path, media, proxy_count=1)
    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, "viewer")
    cookie = f"{COOKIE}={session_token(data_dir, user.id)}"
    url = f"/media/{hashes['clip.mp4']}/file"
    client = Client(app.wsgi_app, WResponse, use_cookies=False)
    ok = client.get(url, headers={"Cookie": cookie, "X-Forwarded-Host": "tv.local"})
    assert ok.status_code == 200
    refused = client.get(url, headers={"Cookie": cookie, "X-Forwarded-Host": "evil.example.com"})
    assert refused.status_code == 400


def test_a_password_sign_in_cookie_streams(served) -> None:
    """End to end with a real sign-in: the cookie the login page sets opens the file directly."""
    app, hashes = served
    make_user(app.config["SETTINGS"].data_dir, "admin", "eve")
    client = app.test_client()
    page = login(client, "eve", TEST_PASSWORD)
    assert page.status_code == 303
    answer = client.get(f"/media/{hashes['clip.mp4']}/file", headers={"Range": "bytes=0-3"})
    assert answer.status_code == 206 and len(answer.data) == 4


def test_a_host_name_flask_cannot_route_is_refused_by_both(served) -> None:
    """`tv..local` passed the Host check ("auto" trusts .local names), so the direct path sent
    the file; Flask could not route the name (Werkzeug's BadHost) and its error page failed."""
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, make_user(data_dir, 'viewer').id)}"}
    url = f"/media/{hashes['clip.mp4']}/file"
    for host in ("tv..local", ".tv.local", "x" * 64 + ".local", "tv..local:8080"):
        assert _same(app, url, headers={**cookie, "Host": host}).status_code == 400, host
    page = Client(app.wsgi_app, WResponse, use_cookies=False).get(
        "/", headers={**cookie, "Host": "tv..local"}
    )
    assert page.status_code == 400
    assert _same(app, url, headers={**cookie, "Host": "tv.local."}).status_code == 200


def test_an_unparsable_date_is_ignored_not_a_500(served) -> None:
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, make_user(data_dir, 'viewer').id)}"}
    url = f"/media/{hashes['clip.mp4']}/file"
    huge_year = "Mon, 01 Jan 9999999999999999999999 00:00:00 GMT"
    for name in ("If-Unmodified-Since", "If-Modified-Since"):
        assert _same(app, url, headers={**cookie, name: huge_year}).status_code == 200
    got = _same(app, url, headers={**cookie, "Range": "bytes=0-1", "If-Range": huge_year})
    assert got.status_code == 200


def test_another_sites_cookie_in_latin1_does_not_break_the_direct_path(
    served, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser sends every cookie of the host name (another app on another port too); one
    that is not UTF-8 made the direct path fail, log a traceback and hand each range to Flask."""
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    hooks: list[str] = []
    app.before_request(lambda: hooks.append(request.path) and None)
    token = session_token(data_dir, make_user(data_dir, "viewer").id)
    url = f"/media/{hashes['clip.mp4']}/file"
    for cookie in (f"router=caf\xe9\xff; {COOKIE}={token}", f"{COOKIE}={token}; router=\xe9"):
        got = _same(app, url, headers={"Cookie": cookie, "Range": "bytes=0-9"})
        assert got.status_code == 206 and len(got.data) == 10
    assert hooks == [url] * 2  # Flask answered only the comparison requests
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _open_copies(path: Path) -> int:
    """Return how many of this process's descriptors are open on `path`."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return found


def test_a_failure_after_the_file_is_open_closes_it(
    served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails between opening the file and handing it to the server (here the range
    decision and the date, made to fail: the general way and the one-range way), the file is
    closed then, not when the garbage collector runs."""
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, make_user(data_dir, 'viewer').id)}"}
    url = f"/media/{hashes['clip.mp4']}/file"
    path = (app.config["SETTINGS"].media_dirs[0] / "Movies" / "clip.mp4").resolve()

    def failing(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(ranges, "decide", failing)
    monkeypatch.setattr(ranges, "http_date", failing)
    gc.disable()  # the leak this finds is one the collector would hide later
    try:
        for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-9"})):
            got = Client(app.wsgi_app, WResponse, use_cookies=False).open(
                url, method=method, headers={**cookie, **headers}
            )
            assert got.status_code == 500  # Flask's answer to a failure of its own
            assert _open_copies(path) == 0, method
    finally:
        gc.enable()


def test_a_database_that_cannot_be_opened_is_flasks_503(tmp_path: Path, media) -> None:
    """The direct path opened its connection outside its error handling: the StorageError went
    up to the server (a bare 500) and left the request id set on the server thread."""
    app, hashes = _build(tmp_path, media)
    db_path = app.config["SETTINGS"].db_path
    for leftover in db_path.parent.glob(db_path.name + "*"):
        leftover.unlink()
    db_path.mkdir()  # what sqlite cannot open
    got = Client(app.wsgi_app, WResponse, use_cookies=False).get(
        f"/media/{hashes['clip.mp4']}/file", headers={"Cookie": f"{COOKIE}=whatever"}
    )
    assert got.status_code == 503
    assert logs.REQUEST_ID.get() == "-"


def test_odd_paths_methods_and_credentials_answer_as_flask_does(served) -> None:
    """What an attacker varies: the path's form, the method's case, stale or borrowed
    credentials, repeated query keys. Either path gives the same answer to each."""
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, "viewer")
    gone = make_user(data_dir, "viewer", "gone")
    secret = app.extensions["media_secret"]
    h = hashes["clip.mp4"]
    url = f"/media/{h}/file"
    db = dbmod.open_db(data_dir)
    try:
        expired = sessions.create(db, user.id, lifetime=-1)
        gone_cookie = sessions.create(db, gone.id)
        with dbmod.write(db):
            db.execute("DELETE FROM users WHERE id = ?", [gone.id])
    finally:
        db.close()
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, user.id)}"}
    good = apitokens.sign_media(secret, user.id, h)
    # The path's form and the method: Flask's pages (a fresh CSRF token each) where not 200.
    for environ, status in (
        ({"PATH_INFO": url + "/"}, 404),
        ({"PATH_INFO": f"/media//{h}/file"}, 308),
        ({"PATH_INFO": "/" + url}, 200),
        ({"SCRIPT_NAME": "/lvs"}, 200),
        ({"REQUEST_METHOD": "get"}, 200),
        ({"REQUEST_METHOD": "OPTIONS"}, 200),
    ):
        method = environ.pop("REQUEST_METHOD", "GET")
        for wsgi in (app.wsgi_app, _flask_only(app).application):
            got = Client(wsgi, WResponse, use_cookies=False).open(
                url, method=method, headers=cookie, environ_overrides=environ
            )
            assert got.status_code == status, (environ, method)
    cases: list[tuple[dict[str, str], str, int]] = [
        ({"Cookie": f"{COOKIE}={expired}"}, "", 401),
        ({"Cookie": f"{COOKIE}={gone_cookie}"}, "", 401),
        ({"Cookie": f"{COOKIE}=forged; {cookie['Cookie']}"}, "", 401),  # the first one counts
        ({"Cookie": f"{cookie['Cookie']}; {COOKIE}=forged"}, "", 200),
        ({}, urlencode(apitokens.sign_media(secret, user.id, "0123456789abcdef")), 401),
        ({}, urlencode(apitokens.sign_media(secret, gone.id, h)), 401),
        ({}, urlencode(good) + "&s=forged", 200),  # the first value counts, as in Flask
        ({}, "s=forged&" + urlencode(good), 401),
        ({"Authorization": "bearer"}, urlencode(good), 401),
    ]
    for headers, query, status in cases:
        got = _same(app, url, headers=headers, query_string=query)
        assert got.status_code == status, (headers, query)


def test_without_proc_media_answers_503_and_says_why(served, monkeypatch, caplog) -> None:
    """Files are checked through /proc/self/fd; a system without /proc gets a clear 503."""
    from services.playback import media_files

    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, "viewer")
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, user.id)}"}
    monkeypatch.setattr(media_files, "PROC_FD", False)
    answer = _same(app, f"/media/{hashes['clip.mp4']}/file", headers=cookie)
    assert answer.status_code == 503 and b"/proc is not mounted" in answer.data
    assert "Retry-After" in answer.headers
    assert "/proc is not mounted" in caplog.text


def test_a_plain_get_or_one_range_is_answered_in_one_step(
    served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET of the whole file or of `bytes=A-B` / `bytes=A-` without conditions — what a player
    sends many times a second — is answered without media.prepare (MediaDirect._simple);
    anything else (HEAD, conditions, suffix or several ranges, 416) goes the general way."""
    app, hashes = served
    data_dir = app.config["SETTINGS"].data_dir
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, make_user(data_dir, 'viewer').id)}"}
    url = f"/media/{hashes['clip.mp4']}/file"
    client = Client(app.wsgi_app, WResponse, use_cookies=False)
    whole = client.get(url, headers=cookie).data

    def failing(*args, **kwargs):
        raise RuntimeError("the general way")

    monkeypatch.setattr(media_routes, "prepare", failing)
    for headers, status, body in (
        ({}, 200, whole),
        ({"Range": "bytes=0-9"}, 206, whole[:10]),
        ({"Range": f"bytes={len(whole) - 5}-"}, 206, whole[-5:]),
        ({"Range": "bytes=9-0"}, 200, whole),  # invalid: ignored
    ):
        got = client.get(url, headers={**cookie, **headers})
        assert (got.status_code, got.data) == (status, body), headers
    for method, headers in (
        ("HEAD", {}),
        ("GET", {"Range": "bytes=-5"}),
        ("GET", {"Range": "bytes=0-1,5-6"}),
        ("GET", {"Range": f"bytes={len(whole)}-"}),
        ("GET", {"If-None-Match": '"x"'}),
    ):
        got = client.open(url, method=method, headers={**cookie, **headers})
        assert got.status_code == 500, (method, headers)  # prepare was asked: it failed
