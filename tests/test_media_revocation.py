"""The lean media path remembers who a credential signs in and where a media item's file lies
(services.db.memo), and still every revocation counts from the very next request, on every
gunicorn worker, with the memo warm: sign-out, sign-out everywhere, a password change, a disabled
or removed account, a revoked API token, a role change, a file moved or replaced.

The server runs two workers with one thread each, so each worker's one memo is the one a
connection's requests meet; every test first warms both (two requests per worker with the
credential, the second answered from the memo), then revokes — through the real routes where a
browser or an admin would, or in the database from this process as a `flask` command does — and
asks both workers again at once, with no wait.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest
from sqlite_utils import Database
from werkzeug.test import Client
from werkzeug.wrappers import Response as WResponse

from app import create_app
from blueprints.access import COOKIE
from blueprints.common import thread_db
from config import Settings
from services import db as dbmod
from services import metrics
from services.library.scanner import scan
from services.people import apitokens, sessions, users
from tests.conftest import TEST_PASSWORD, make_user, session_token
from tests.server import Gunicorn

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
FIRST = {"Range": "bytes=0-99"}


@dataclass
class Server:
    port: int
    settings: Settings
    lib: Path
    hashes: dict[str, str]  # file name -> media_hash
    admin: dict[str, str]  # an admin's API token header
    workers: list[int]
    counter: list[int] = field(default_factory=lambda: [0])

    def connect(self) -> HTTPConnection:
        return HTTPConnection("127.0.0.1", self.port, timeout=20)

    def data(self, rel: str) -> bytes:
        return (self.lib / rel).read_bytes()

    def db(self) -> Database:
        return dbmod.open_db(self.settings.data_dir)

    def viewer(self, role: str = "viewer") -> users.User:
        """A fresh account for one test."""
        self.counter[0] += 1
        return make_user(self.settings.data_dir, role, f"revoked-{self.counter[0]}")

    def session(self, user: users.User) -> str:
        return session_token(self.settings.data_dir, user.id)


@pytest.fixture(scope="module")
def server(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("revocation")
    lib = base / "lib"
    for rel, key in (("Keep/clip.mp4", "h264_mp4"), ("Move/x.mp4", "h264_mkv")):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(media[key], lib / rel)
    (lib / "Other").mkdir()
    shutil.copy(media["vp9_webm"], lib / "Other" / "y.webm")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(base / "data"), "watch": "off"})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    try:
        scan(db, settings)
        hashes = dict(
            db.execute(
                "SELECT f.name, m.media_hash FROM files f JOIN media m ON m.id = f.media_id"
            ).fetchall()
        )
        admin = make_user(settings.data_dir, "admin", "the-admin")
        token = apitokens.create(db, admin.id, "tests")
    finally:
        db.close()
    gunicorn = Gunicorn()
    env = {
        "LVS_MEDIA_DIRS": str(lib),
        "LVS_DATA_DIR": str(settings.data_dir),
        "LVS_BACKGROUND": "off",
        "LVS_WORKERS": "2",
        "LVS_THREADS": "1",  # one thread, one memo per worker: the one every request meets
    }
    gunicorn.start(env, base / "gunicorn.log", ready="/livez", app="tests.lean_route_app:create()")
    try:
        workers = [p.pid for p in psutil.Process(gunicorn.proc.pid).children()]
        assert len(workers) == 2
        yield Server(
            gunicorn.port, settings, lib, hashes, {"Authorization": f"Bearer {token}"}, workers
        )
    finally:
        gunicorn.stop()


def ask(conn: HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def worker_of(server: Server, conn: HTTPConnection) -> int | None:
    """Return the pid of the worker that holds this client connection."""
    assert conn.sock is not None
    mine = conn.sock.getsockname()[1]
    for pid in server.workers:
        for c in psutil.Process(pid).net_connections("tcp"):
            if c.raddr and c.raddr.port == mine:
                return pid
    return None


def warm(server: Server, path: str, headers: dict[str, str], want: int = 206) -> list:
    """Return one kept-alive connection per worker, each having asked for `path` twice with
    these credentials (the second answered from the worker's memo)."""
    held: dict[int, HTTPConnection] = {}
    for _ in range(300):  # new connections go to whichever worker accepts first
        conn = server.connect()
        assert ask(conn, path, headers)[0] == want
        pid = worker_of(server, conn)
        if pid is None or pid in held:
            conn.close()
            continue
        held[pid] = conn
        if len(held) == len(server.workers):
            break
    assert len(held) == len(server.workers), "the workers did not both take a connection"
    for conn in held.values():
        assert ask(conn, path, headers)[0] == want
    return list(held.values())


def form_session(server: Server, token: str) -> tuple[str, str]:
    """Return the Cookie header and CSRF token a browser signed in with `token` posts with."""
    conn = server.connect()
    conn.request("GET", "/account", headers={"Cookie": f"{COOKIE}={token}"})
    r = conn.getresponse()
    page = r.read().decode()
    assert r.status == 200, page[:300]
    csrf_cookie = next(
        v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and "csrf" in v
    )
    conn.close()
    found = CSRF_META.search(page)
    assert found
    return f"{COOKIE}={token}; {csrf_cookie}", found[1]


def post(server: Server, path: str, headers: dict[str, str], **fields: str) -> int:
    conn = server.connect()
    conn.request(
        "POST",
        path,
        body=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def browser_post(server: Server, path: str, token: str, **fields: str) -> int:
    cookie, csrf = form_session(server, token)
    return post(server, path, {"Cookie": cookie, "X-CSRFToken": csrf}, **fields)


def file_url(server: Server, name: str = "clip.mp4", suffix: str = "file") -> str:
    return f"/media/{server.hashes[name]}/{suffix}"


def statuses(conns: list[HTTPConnection], path: str, headers: dict[str, str]) -> list[int]:
    return [ask(conn, path, headers)[0] for conn in conns]


def test_the_warm_workers_still_hold_the_database_open(server: Server) -> None:
    """Their memos watch the -shm through a mapping (services.db.WalWatch), which once closed
    the descriptor it mapped through and so dropped SQLite's "database open" lock (a POSIX read
    lock on the -shm's byte 128): the next process to open the database then truncated the -shm
    under the workers and they died of SIGBUS (tests/test_walwatch.py)."""
    token = server.session(server.viewer())
    conns = warm(server, file_url(server), {"Cookie": f"{COOKIE}={token}", **FIRST})
    shm = os.stat(server.settings.data_dir / "library.db-shm")
    inode = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino} 128 128"
    holders = {
        int(line.split()[4])
        for line in Path("/proc/locks").read_text().splitlines()
        if line.split()[1:4] == ["POSIX", "ADVISORY", "READ"] and line.endswith(inode)
    }
    assert set(server.workers) <= holders, (server.workers, holders)
    for conn in conns:
        conn.close()


# --- sessions -------------------------------------------------------------------------------


def test_sign_out_stops_the_next_range_on_every_worker(server: Server) -> None:
    token = server.session(server.viewer())
    player = {"Cookie": f"{COOKIE}={token}", **FIRST}
    cookie, csrf = form_session(server, token)  # the browser's page, before playing
    conns = warm(server, file_url(server), player)
    assert post(server, "/logout", {"Cookie": cookie, "X-CSRFToken": csrf}) == 303
    assert statuses(conns, file_url(server), player) == [401, 401]


def test_sign_out_everywhere_and_a_password_change_end_the_other_sessions_at_once(
    server: Server,
) -> None:
    for path, fields in (
        ("/account/sessions/end-all", {}),
        ("/account/sessions/end-others", {}),
        ("/account/password", {"current": TEST_PASSWORD, "new": "another pass 1", "confirm": ""}),
    ):
        user = server.viewer()
        browser, phone = server.session(user), server.session(user)
        if "confirm" in fields:
            fields = {**fields, "confirm": fields["new"]}
        cookie, csrf = form_session(server, browser)
        player = {"Cookie": f"{COOKIE}={phone}", **FIRST}
        conns = warm(server, file_url(server), player)
        assert post(server, path, {"Cookie": cookie, "X-CSRFToken": csrf}, **fields) == 303
        assert statuses(conns, file_url(server), player) == [401, 401], path


def test_a_session_ended_from_the_console_stops_at_once(server: Server) -> None:
    """`flask reset-password` ends every session: another process's commit."""
    user = server.viewer()
    player = {"Cookie": f"{COOKIE}={server.session(user)}", **FIRST}
    conns = warm(server, file_url(server), player)
    db = server.db()
    try:
        users.set_password(db, user.id, "reset by the operator")
        assert sessions.end_all(db, user.id) == 1
    finally:
        db.close()
    assert statuses(conns, file_url(server), player) == [401, 401]


# --- accounts and tokens --------------------------------------------------------------------


def test_disabling_an_account_stops_its_session_token_and_signed_urls_at_once(
    server: Server,
) -> None:
    user = server.viewer()
    db = server.db()
    try:
        token = apitokens.create(db, user.id, "player")
    finally:
        db.close()
    secret = sessions.secret_key(server.settings.data_dir)
    signed = apitokens.sign_media(secret, user.id, server.hashes["clip.mp4"])
    credentials = [
        (file_url(server), {"Cookie": f"{COOKIE}={server.session(user)}", **FIRST}),
        (file_url(server), {"Authorization": f"Bearer {token}", **FIRST}),
        (f"{file_url(server)}?{urlencode(signed)}", FIRST),
    ]
    warmed = [(warm(server, url, headers), url, headers) for url, headers in credentials]
    for conns, url, headers in warmed:  # one more round: every credential warm on every worker
        assert statuses(conns, url, headers) == [206, 206]
    assert post(server, f"/admin/users/{user.id}/disable", server.admin) == 303
    for conns, url, headers in warmed:
        assert statuses(conns, url, headers) == [401, 401], headers


def test_removing_an_account_stops_it_at_once(server: Server) -> None:
    user = server.viewer()
    player = {"Cookie": f"{COOKIE}={server.session(user)}", **FIRST}
    conns = warm(server, file_url(server), player)
    assert post(server, f"/admin/users/{user.id}/remove", server.admin) == 303
    assert statuses(conns, file_url(server), player) == [401, 401]


def test_a_revoked_api_token_stops_at_once(server: Server) -> None:
    user = server.viewer()
    db = server.db()
    try:
        token = apitokens.create(db, user.id, "headset")
        token_id = apitokens.list_for(db, user.id)[0].id
    finally:
        db.close()
    player = {"Authorization": f"Bearer {token}", **FIRST}
    conns = warm(server, file_url(server), player)
    db = server.db()
    try:
        apitokens.revoke(db, user.id, token_id)
    finally:
        db.close()
    assert statuses(conns, file_url(server), player) == [401, 401]


def test_a_role_change_counts_on_a_direct_route_at_once(server: Server) -> None:
    """tests/lean_route_app.py's admin-only route decides on the remembered user's role."""
    user = server.viewer()
    player = {"Cookie": f"{COOKIE}={server.session(user)}", **FIRST}
    url = file_url(server, suffix="admin-copy")
    conns = warm(server, url, player, want=404)
    assert post(server, f"/admin/users/{user.id}/role", server.admin, role="admin") == 303
    assert [ask(c, url, player) for c in conns] == [(206, server.data("Keep/clip.mp4")[:100])] * 2
    assert post(server, f"/admin/users/{user.id}/role", server.admin, role="viewer") == 303
    assert statuses(conns, url, player) == [404, 404]


# --- files ----------------------------------------------------------------------------------


def test_moved_files_count_at_once(server: Server) -> None:
    """Two files move (a rename, a folder change): the scanner's commit sends the very next
    request to the new place on every worker (a remembered old path would answer 404)."""
    x_bytes, y_bytes = server.data("Move/x.mp4"), server.data("Other/y.webm")
    player = {"Cookie": f"{COOKIE}={server.session(server.viewer())}", **FIRST}
    x_url, y_url = file_url(server, "x.mp4"), file_url(server, "y.webm")
    conns = warm(server, x_url, player)
    for conn in conns:
        assert ask(conn, y_url, player) == (206, y_bytes[:100])
    (server.lib / "Moved").mkdir()
    (server.lib / "Move" / "x.mp4").rename(server.lib / "Moved" / "x.mp4")
    (server.lib / "Other" / "y.webm").rename(server.lib / "Other" / "renamed y.webm")
    assert statuses(conns, x_url, player) == [404, 404]  # gone, not yet scanned: as before
    db = server.db()
    try:
        report = scan(db, server.settings)
    finally:
        db.close()
    assert report.moved == 2, report
    for conn in conns:
        assert ask(conn, x_url, player) == (206, x_bytes[:100])
        assert ask(conn, y_url, player) == (206, y_bytes[:100])


# --- the memo itself, in-process --------------------------------------------------------------


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_the_memo_is_emptied_by_any_commit_and_kept_otherwise(tmp_path: Path, journal: str) -> None:
    """WAL (the server's databases): the wal-index header; else data_version + total_changes."""
    path = tmp_path / "library.db"
    db, other = Database(sqlite3.connect(path, isolation_level=None)), None
    db.execute(f"PRAGMA journal_mode = {journal}")
    db.execute("CREATE TABLE scratch (x)")
    other = Database(sqlite3.connect(path, isolation_level=None))
    try:
        memo = dbmod.memo(db)
        assert (dbmod._memos.memo.watch is not None) == (journal == "wal")
        memo["k"] = 1
        assert dbmod.memo(db) is memo and memo == {"k": 1}  # nothing committed: kept
        db.execute("SELECT count(*) FROM scratch").fetchone()
        other.execute("SELECT count(*) FROM scratch").fetchone()
        assert dbmod.memo(db) == {"k": 1}  # reading changes nothing
        with dbmod.write(other):
            other.execute("INSERT INTO scratch VALUES (1)")  # another connection
        assert dbmod.memo(db) == {}
        dbmod.memo(db)["k"] = 2
        with dbmod.write(db):
            db.execute("INSERT INTO scratch VALUES (2)")  # this connection
        assert dbmod.memo(db) == {}
        dbmod.memo(db)["k"] = 3
        assert dbmod.memo(other) == {}  # another connection on this thread: its own memo
    finally:
        other.close()
        db.close()


def test_a_warm_range_request_asks_the_database_nothing(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(media["h264_mp4"], lib / "clip.mp4")
    app = create_app({"media_dirs": [str(lib)], "data_dir": str(tmp_path / "data")})
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    try:
        scan(db, settings)
        media_hash = db.execute("SELECT media_hash FROM media").fetchone()[0]
    finally:
        db.close()
    user = make_user(settings.data_dir, "viewer")
    headers = {"Cookie": f"{COOKIE}={session_token(settings.data_dir, user.id)}", **FIRST}
    client = Client(app.wsgi_app, WResponse, use_cookies=False)
    statements: list[str] = []
    conn = thread_db(settings.db_path).conn
    conn.set_trace_callback(statements.append)
    try:
        assert client.get(f"/media/{media_hash}/file", headers=headers).status_code == 206
        cold = list(statements)
        statements.clear()
        r = client.get(f"/media/{media_hash}/file", headers=headers)
        assert r.status_code == 206 and r.data == (lib / "clip.mp4").read_bytes()[:100]
    finally:
        conn.set_trace_callback(metrics.count_query)  # as thread_db set it
    assert len(cold) >= 3  # the session, the user, the file's copies
    assert statements == []  # the change counter is read from the -shm file (WalWatch)
