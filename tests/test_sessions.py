"""Server-side sessions: cookie flags, hashed storage, rotation at sign-in, sliding expiry,
the sessions page, sign out everywhere, and what ends a session (password change, a disabled or
removed account)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from blueprints.access import COOKIE
from services import db as dbmod
from services.people import sessions, users
from tests.conftest import TEST_PASSWORD, make_user, signed_in
from tests.test_auth import csrf_of, login, make_app


@pytest.fixture
def app(tmp_path: Path):
    application = make_app(tmp_path)
    make_user(tmp_path / "data", "admin", "ann")
    make_user(tmp_path / "data", "viewer", "bob")
    return application


@pytest.fixture
def db(app):
    database = dbmod.open_db(app.config["SETTINGS"].data_dir)
    yield database
    database.close()


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))


def test_cookie_is_httponly_lax_and_secure_only_under_https(app) -> None:
    plain = session_cookie(login(app.test_client(), "ann", TEST_PASSWORD))
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    client = app.test_client()
    token = csrf_of(client.get("/login", base_url="https://tv.local").get_data(as_text=True))
    form = {"csrf_token": token, "name": "ann", "password": TEST_PASSWORD}
    r = client.post(
        "/login",
        data=form,
        base_url="https://tv.local",
        headers={"Referer": "https://tv.local/login"},
    )
    assert r.status_code == 303
    secure = session_cookie(r)
    assert "Secure" in secure and "HttpOnly" in secure and "SameSite=Lax" in secure


def test_only_the_hash_of_the_token_is_stored(app, db) -> None:
    cookie = session_cookie(login(app.test_client(), "ann", TEST_PASSWORD))
    token = cookie.split(";")[0].split("=", 1)[1]
    stored = [r[0] for r in db.execute("SELECT token_hash FROM sessions")]
    assert token not in stored and sessions.token_hash(token) in stored
    assert len(token) >= 40  # 32 random bytes


def test_sign_in_rotates_the_session(app, db) -> None:
    client = app.test_client()
    login(client, "bob", TEST_PASSWORD)
    first = client.get_cookie(COOKIE).value
    token = csrf_of(client.get("/account").get_data(as_text=True))  # signed in: no login page
    form = {"csrf_token": token, "name": "ann", "password": TEST_PASSWORD}
    assert client.post("/login", data=form).status_code == 303
    second = client.get_cookie(COOKIE).value
    assert first != second
    assert sessions.lookup(db, first) is None  # the old one ended, not just replaced
    assert sessions.lookup(db, second).user_id == users.by_name(db, "ann").id
    # A token planted before sign-in (session fixation) is not what the user ends up with.
    planted = app.test_client()
    planted.set_cookie(COOKIE, "attacker-chosen-token")
    login(planted, "ann", TEST_PASSWORD)
    assert planted.get_cookie(COOKIE).value != "attacker-chosen-token"


def test_expiry_slides_with_use_and_an_expired_session_ends(app, db) -> None:
    ann = users.by_name(db, "ann").id
    token = sessions.create(db, ann)
    th = sessions.token_hash(token)
    an_hour_ago = time.time() - 3600
    with dbmod.write(db):
        db.execute(
            "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?",
            [an_hour_ago, an_hour_ago + 7200, th],
        )
    client = app.test_client()
    client.set_cookie(COOKIE, token)
    assert client.get("/account").status_code == 200
    expires = db.execute("SELECT expires_at FROM sessions WHERE token_hash = ?", [th]).fetchone()[0]
    assert expires > time.time() + sessions.LIFETIME - 60
    with dbmod.write(db):
        db.execute("UPDATE sessions SET expires_at = ? WHERE token_hash = ?", [time.time() - 1, th])
    r = client.get("/account", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert db.execute("SELECT count(*) FROM sessions WHERE token_hash = ?", [th]).fetchone()[0] == 0


def test_sessions_page_lists_and_ends_sessions(app, db) -> None:
    phone = signed_in(app, "viewer", "bob")
    laptop = signed_in(app, "viewer", "bob")
    page = laptop.get("/account").get_data(as_text=True)
    assert page.count("data-session") == 2 and "this browser" in page
    other = next(
        s.token_hash
        for s in sessions.list_for(db, users.by_name(db, "bob").id)
        if s.token_hash != sessions.token_hash(laptop.get_cookie(COOKIE).value)
    )
    assert laptop.post(f"/account/sessions/{other}/end").status_code == 303
    assert phone.get("/account").status_code == 401
    assert laptop.get("/account").status_code == 200
    # Someone else's session cannot be ended from here.
    ann_client = signed_in(app, "admin", "ann")
    ann_hash = sessions.token_hash(ann_client.get_cookie(COOKIE).value)
    laptop.post(f"/account/sessions/{ann_hash}/end")
    assert ann_client.get("/account").status_code == 200


def test_sign_out_everywhere(app) -> None:
    a, b = signed_in(app, "viewer", "bob"), signed_in(app, "viewer", "bob")
    ann = signed_in(app, "admin", "ann")
    r = a.post("/account/sessions/end-all")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert a.get("/account").status_code == 401 and b.get("/account").status_code == 401
    assert ann.get("/account").status_code == 200  # only bob's sessions


def test_sign_out_everywhere_else_keeps_this_one(app) -> None:
    a, b = signed_in(app, "viewer", "bob"), signed_in(app, "viewer", "bob")
    assert a.post("/account/sessions/end-others").status_code == 303
    assert a.get("/account").status_code == 200 and b.get("/account").status_code == 401


def test_password_change_ends_the_other_sessions(app) -> None:
    a, b = signed_in(app, "viewer", "bob"), signed_in(app, "viewer", "bob")
    form = {"current": "wrong password", "new": "a brand new one", "confirm": "a brand new one"}
    assert a.post("/account/password", data=form).status_code == 400
    assert b.get("/account").status_code == 200
    r = a.post("/account/password", data={**form, "current": TEST_PASSWORD})
    assert r.status_code == 303
    assert "1 other session ended" in a.get("/account").get_data(as_text=True)
    assert b.get("/account").status_code == 401


def test_disabled_or_removed_users_sessions_end(app, db) -> None:
    client = signed_in(app, "viewer", "bob")
    bob = users.by_name(db, "bob").id
    users.set_disabled(db, bob, True)
    assert client.get("/account").status_code == 401
    users.set_disabled(db, bob, False)
    client = signed_in(app, "viewer", "bob")
    users.remove(db, bob)
    assert client.get("/account").status_code == 401
    assert db.execute("SELECT count(*) FROM sessions WHERE user_id = ?", [bob]).fetchone()[0] == 0


def test_sign_out_ends_the_session_server_side(app, db) -> None:
    client = app.test_client()
    login(client, "bob", TEST_PASSWORD)
    token = client.get_cookie(COOKIE).value
    page = client.get("/account").get_data(as_text=True)
    assert re.search(r'action="/logout"', page)
    client.post("/logout", data={"csrf_token": csrf_of(page)})
    assert sessions.lookup(db, token) is None
    replay = app.test_client()
    replay.set_cookie(COOKIE, token)  # a copied cookie is worthless after sign out
    assert replay.get("/account").status_code == 401


def test_gunicorn_serves_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    """LVS_TLS=self-signed: gunicorn makes and serves a certificate for this machine's names,
    which a client that trusts it accepts for `localhost`; the cookies are then Secure."""
    import os
    import ssl
    import subprocess
    import urllib.request

    from tests.server import ROOT, free_port

    port = free_port()
    (tmp_path / "lib").mkdir()
    env = {
        **os.environ,
        "LVS_MEDIA_DIRS": str(tmp_path / "lib"),
        "LVS_DATA_DIR": str(tmp_path / "data"),
        "LVS_HOST": "127.0.0.1",
        "LVS_PORT": str(port),
        "LVS_WORKERS": "1",
        "LVS_WATCH": "off",
        "LVS_TLS": "self-signed",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        cert = tmp_path / "data" / "tls" / "cert.pem"
        deadline = time.monotonic() + 30
        while True:
            try:
                trusting = ssl.create_default_context(cafile=str(cert))
                url = f"https://localhost:{port}/login"
                with urllib.request.urlopen(url, context=trusting, timeout=5) as r:
                    assert r.status == 200
                    cookies = r.headers.get_all("Set-Cookie") or []
                    break
            except (OSError, ssl.SSLError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert cookies and all("Secure" in c for c in cookies)
        assert "Open https://" in log.read_text()
        with pytest.raises(urllib.error.URLError):  # not trusted: refused, as a browser would
            urllib.request.urlopen(f"https://localhost:{port}/livez", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
