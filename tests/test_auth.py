"""Signing in: first-run setup, passwords (bcrypt's 72 bytes, unknown user and wrong password
alike), open redirects, CSRF on forms and htmx, rate limits shared by processes, API tokens,
signed media URLs, guest mode, the admin's user pages and the account commands."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app import create_app
from services import db as dbmod
from services.people import apitokens, passwords, users
from tests.conftest import TEST_PASSWORD, make_user, signed_in

HASH = "0123456789abcdef"


def make_app(tmp_path: Path, **overrides):
    config = {"media_dirs": [str(tmp_path / "lib")], "data_dir": str(tmp_path / "data")}
    (tmp_path / "lib").mkdir(exist_ok=True)
    return create_app({**config, **overrides})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, name: str, password: str, next_: str = "", **headers):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form = {"csrf_token": token, "name": name, "password": password, "next": next_}
    return client.post("/login", data=form, headers=headers)


@pytest.fixture
def app(tmp_path: Path):
    application = make_app(tmp_path, login_limit=1000, login_limit_ip=1000)
    make_user(tmp_path / "data", "admin", "ann")
    make_user(tmp_path / "data", "viewer", "bob")
    return application


# ---- first run ----


def test_first_run_setup_makes_user_one_the_admin_then_closes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    db = dbmod.open_db(tmp_path / "data")
    # Something watched before accounts existed: the default user's.
    with dbmod.write(db):
        db.execute(
            "INSERT INTO media (id, media_hash, size, kind, added_at) VALUES (7, ?, 1, 'video', 0)",
            [HASH],
        )
        db.execute("INSERT INTO watch_state (user_id, media_id, position) VALUES (1, 7, 42)")
    client = app.test_client()
    first = client.get("/", headers={"Accept": "text/html"})
    assert first.status_code == 302 and first.headers["Location"].startswith("/login")
    assert client.get("/login").headers["Location"] == "/setup"
    page = client.get("/setup").get_data(as_text=True)
    form = {"csrf_token": csrf_of(page), "name": "ann", "password": "long enough"}
    assert client.post("/setup", data={**form, "confirm": "other one"}).status_code == 400
    done = client.post("/setup", data={**form, "confirm": "long enough"})
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
    ann = users.by_name(db, "ann")
    assert ann.id == 1 and ann.role == "admin"
    assert db.execute("SELECT user_id, position FROM watch_state").fetchall() == [(1, 42)]
    # Setup exists only while there is no admin.
    assert app.test_client().get("/setup").status_code == 404
    assert app.test_client().post("/setup", data=form).status_code in (400, 404)
    db.close()


def test_setup_without_csrf_token_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    form = {"name": "eve", "password": "long enough", "confirm": "long enough"}
    assert app.test_client().post("/setup", data=form).status_code == 400
    db = dbmod.open_db(tmp_path / "data")
    assert users.setup_needed(db)
    db.close()


# ---- passwords ----


def test_sign_in_with_password_and_sign_out(app) -> None:
    client = app.test_client()
    r = login(client, "ANN", TEST_PASSWORD)  # names are matched in any case
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert client.get("/account").status_code == 200
    token = csrf_of(client.get("/account").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/account").status_code == 401


def test_unknown_user_and_wrong_password_look_the_same(app) -> None:
    wrong = login(app.test_client(), "ann", "not the password")
    unknown = login(app.test_client(), "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401

    def strip(r) -> str:  # the CSRF tokens differ from page to page
        html = r.get_data(as_text=True).replace("nobody", "ann")
        return re.sub(r'"[\w.-]{60,}"', "", html)

    assert strip(wrong) == strip(unknown)


def test_unknown_user_and_wrong_password_take_the_same_time(tmp_path: Path) -> None:
    db = dbmod.open_db(tmp_path / "data")
    users.create(db, "carol", "viewer", "the real password")  # full-cost bcrypt, as in use
    hashed = users.password_hash(db, users.by_name(db, "carol").id)
    wrong, unknown = [], []
    # bcrypt runs on the calling thread: its CPU time is the work done, which wall time on a
    # shared machine is not (under load one check took twice as long as the other).
    for _ in range(3):
        t = time.thread_time()
        assert not passwords.verify("a wrong password", hashed)
        wrong.append(time.thread_time() - t)
        t = time.thread_time()
        assert not passwords.verify("a wrong password", None)
        unknown.append(time.thread_time() - t)
    ratio = min(unknown) / min(wrong)
    assert 0.6 < ratio < 1.6, (wrong, unknown)
    db.close()


def test_bcrypt_72_byte_limit_is_a_clear_400(app) -> None:
    euro72, euro75 = "€" * 24, "€" * 25  # 3 bytes each in UTF-8
    assert passwords.check_length(euro72)
    with pytest.raises(passwords.PasswordRejected, match="72 bytes"):
        passwords.hash_password(euro75)
    with pytest.raises(passwords.PasswordRejected, match="at least 8"):
        passwords.hash_password("short")
    r = login(app.test_client(), "ann", euro75)
    assert r.status_code == 400 and "72 bytes" in r.get_data(as_text=True)
    r = login(app.test_client(), "nobody", "x" * 500)
    assert r.status_code == 400
    # A 72-byte password works end to end.
    admin = signed_in(app, "admin", "ann")
    form = {"current": TEST_PASSWORD, "new": euro72, "confirm": euro72}
    assert admin.post("/account/password", data=form).status_code == 303
    assert login(app.test_client(), "ann", euro72).status_code == 303
    r = admin.post("/account/password", data={"current": euro72, "new": euro75, "confirm": euro75})
    assert r.status_code == 400 and "72 bytes" in r.get_data(as_text=True)


def test_disabled_account_cannot_sign_in(app) -> None:
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    users.set_disabled(db, users.by_name(db, "bob").id, True)
    assert login(app.test_client(), "bob", TEST_PASSWORD).status_code == 401
    db.close()


# ---- open redirects ----


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/watch/abc?t=1", "/watch/abc?t=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("\\\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # a path here, not a host
        ("/\tevil", "/"),
        ("", "/"),
    ],
)
def test_next_only_goes_to_local_paths(app, target: str, expected: str) -> None:
    r = login(app.test_client(), "ann", TEST_PASSWORD, target)
    assert r.status_code == 303 and r.headers["Location"] == expected


def test_the_login_redirect_carries_next(app) -> None:
    r = app.test_client().get(f"/watch/{HASH}?t=5", headers={"Accept": "text/html"})
    assert r.status_code == 302
    assert r.headers["Location"] == f"/login?next=/watch/{HASH}?t%3D5"


# ---- CSRF ----


def test_csrf_is_required_on_form_and_htmx_posts(app) -> None:
    client = signed_in(app, "viewer", "bob")
    url = "/account/tokens"
    assert client.post(url, data={"name": "x"}).status_code == 201  # header, as htmx sends it
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    r = client.post(url, data={"name": "x"}, headers={"HX-Request": "true"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = client.post(url, data={"name": "x"}, headers={"X-CSRFToken": "forged"})
    assert r.status_code == 400
    # The token of the page works as a form field and as htmx's header.
    page = client.get("/account").get_data(as_text=True)
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    assert f'hx-headers=\'{{"X-CSRFToken": "{meta}"}}\'' in page
    assert client.post(url, data={"name": "x"}, headers={"X-CSRFToken": meta}).status_code == 201
    assert client.post(url, data={"name": "x", "csrf_token": meta}).status_code == 201
    # Another browser's token does not work here.
    other = app.test_client()
    stolen = csrf_of(other.get("/login").get_data(as_text=True))
    assert client.post(url, data={"name": "x", "csrf_token": stolen}).status_code == 400


def test_cross_site_origin_is_refused_even_with_a_token(app) -> None:
    client = signed_in(app, "admin", "ann")
    r = client.post(
        "/account/tokens", data={"name": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403


# ---- rate limits ----


def test_sign_in_rate_limit_per_account_shared_by_processes(tmp_path: Path) -> None:
    first = make_app(tmp_path, login_limit=3, login_limit_ip=100)
    second = make_app(tmp_path, login_limit=3, login_limit_ip=100)  # another worker: same DB
    make_user(tmp_path / "data", "admin", "ann")
    codes = [
        login(app.test_client(), "ann", "wrong password").status_code
        for app in (first, second, first)
    ]
    assert codes == [401, 401, 401]
    r = login(second.test_client(), "ann", TEST_PASSWORD)  # even the right password, for now
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 300
    assert "Too many" in r.get_data(as_text=True)
    # Another account is not held up by this one.
    make_user(tmp_path / "data", "viewer", "bob")
    assert login(first.test_client(), "bob", TEST_PASSWORD).status_code == 303


def test_only_failed_sign_ins_count_against_the_limit(tmp_path: Path) -> None:
    """Issue 16: the eleventh correct sign-in in five minutes was refused; successes are free."""
    app = make_app(tmp_path, login_limit=3, login_limit_ip=3)
    make_user(tmp_path / "data", "admin", "ann")
    codes = [login(app.test_client(), "ann", TEST_PASSWORD).status_code for _ in range(8)]
    assert codes == [303] * 8
    assert login(app.test_client(), "ann", "wrong password").status_code == 401
    assert login(app.test_client(), "ann", TEST_PASSWORD).status_code == 303  # 1 failure of 3
    codes = [login(app.test_client(), "ann", "wrong password").status_code for _ in range(3)]
    assert codes == [401, 401, 429]  # the third failure in the window reaches the limit


def test_sign_in_rate_limit_per_address_ignores_forwarded_for(tmp_path: Path) -> None:
    app = make_app(tmp_path, login_limit=100, login_limit_ip=3)
    make_user(tmp_path / "data", "admin", "ann")
    for n in range(3):
        r = login(
            app.test_client(), f"user{n}", "wrong password", **{"X-Forwarded-For": f"10.0.0.{n}"}
        )
        assert r.status_code == 401
    r = login(app.test_client(), "ann", TEST_PASSWORD, **{"X-Forwarded-For": "10.9.9.9"})
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_forwarded_for_is_used_only_behind_a_configured_proxy(tmp_path: Path) -> None:
    app = make_app(tmp_path, login_limit=100, login_limit_ip=2, proxy_count=1)
    make_user(tmp_path / "data", "admin", "ann")
    for n in range(4):  # four clients behind the proxy, one attempt each
        r = login(app.test_client(), "ann", "wrong password", **{"X-Forwarded-For": f"10.0.0.{n}"})
        assert r.status_code == 401


def test_passkey_sign_in_is_rate_limited_too(tmp_path: Path) -> None:
    app = make_app(tmp_path, login_limit_ip=2)
    make_user(tmp_path / "data", "admin", "ann")
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    codes = [
        client.post("/login/passkey", json={}, headers={"X-CSRFToken": token}).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


def test_passkey_challenges_are_rate_limited(tmp_path: Path) -> None:
    """The options call is public and writes a challenge row: it counts as an attempt."""
    app = make_app(tmp_path, login_limit_ip=2)
    make_user(tmp_path / "data", "admin", "ann")
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    codes = [
        client.post("/login/passkey/options", headers={"X-CSRFToken": token}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


# ---- API tokens and signed media URLs ----


def test_api_token_opens_routes_without_cookie_or_csrf(app) -> None:
    data_dir = app.config["SETTINGS"].data_dir
    db = dbmod.open_db(data_dir)
    bob = users.by_name(db, "bob")
    token = apitokens.create(db, bob.id, "headset")
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get("/", headers=auth).status_code == 200
    assert client.get("/admin/users", headers=auth).status_code == 403  # a viewer's token
    assert client.get("/account", headers=auth).status_code == 403  # not the account's keys
    bad = client.get("/", headers={"Authorization": "Bearer lvs_forged"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/", headers={"Authorization": "Basic Ym9iOng="}).status_code == 401
    stored = db.execute("SELECT token_hash FROM api_tokens").fetchone()[0]
    assert token not in stored and len(stored) == 64
    users.set_disabled(db, bob.id, True)
    assert client.get("/", headers=auth).status_code == 401
    users.set_disabled(db, bob.id, False)
    apitokens.revoke(db, bob.id, apitokens.list_for(db, bob.id)[0].id)
    assert client.get("/", headers=auth).status_code == 401
    db.close()


def test_signed_media_url_opens_one_media_item_for_a_while(app) -> None:
    secret = app.extensions["media_secret"]
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    bob = users.by_name(db, "bob").id
    client = app.test_client()
    params = apitokens.sign_media(secret, bob, HASH)
    # Signed: past the guard (the media does not exist, so 404 rather than 401).
    assert client.get(f"/media/{HASH}/file", query_string=params).status_code == 404
    assert client.get(f"/media/{'f' * 16}/file", query_string=params).status_code == 401
    assert client.get("/", query_string=params, headers={"Accept": "text/html"}).status_code == 302
    forged = {**params, "u": "1"}
    assert client.get(f"/media/{HASH}/file", query_string=forged).status_code == 401
    old = apitokens.sign_media(secret, bob, HASH, ttl=-1)
    assert client.get(f"/media/{HASH}/file", query_string=old).status_code == 401
    assert apitokens.check_media_signature(secret, HASH, {"u": "x", "e": "1", "s": ""}) is None
    db.close()


# ---- guest mode ----


def test_guest_mode_reads_but_never_writes(tmp_path: Path) -> None:
    off = make_app(tmp_path)
    assert off.test_client().get("/", headers={"Accept": "text/html"}).status_code == 302
    on = make_app(tmp_path, guest=True)
    make_user(tmp_path / "data", "admin", "ann")
    guest = on.test_client()
    page = guest.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Sign in" in page.get_data(as_text=True)
    token = csrf_of(guest.get("/login").get_data(as_text=True))
    r = guest.post(f"/watch/{HASH}/progress", data={"csrf_token": token, "position": "1"})
    assert r.status_code == 401
    assert guest.get("/account", headers={"Accept": "text/html"}).status_code == 302
    assert guest.get("/admin/users", headers={"Accept": "text/html"}).status_code == 302


# ---- admin: people ----


def test_admin_adds_disables_and_removes_people(app) -> None:
    admin = signed_in(app, "admin", "ann")
    r = admin.post(
        "/admin/users", data={"name": "cat", "password": "cats password", "role": "viewer"}
    )
    assert r.status_code == 303
    assert login(app.test_client(), "cat", "cats password").status_code == 303
    dup = admin.post(
        "/admin/users", data={"name": "CAT", "password": "whatever123", "role": "viewer"}
    )
    assert dup.status_code == 400 and "already" in dup.get_data(as_text=True)
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    cat = users.by_name(db, "cat")
    cat_client = signed_in(app, "viewer", "cat")
    assert cat_client.get("/account").status_code == 200
    assert admin.post(f"/admin/users/{cat.id}/disable").status_code == 303
    assert cat_client.get("/account").status_code == 401  # its session ended
    assert login(app.test_client(), "cat", "cats password").status_code == 401
    assert 'data-user="cat"' in admin.get("/admin/users").get_data(as_text=True)
    assert admin.post(f"/admin/users/{cat.id}/enable").status_code == 303
    assert admin.post(f"/admin/users/{cat.id}/remove").status_code == 303
    assert users.by_name(db, "cat") is None
    me = users.by_name(db, "ann").id
    assert admin.post(f"/admin/users/{me}/remove").status_code == 400  # not yourself
    assert 'data-user="cat"' not in admin.get("/admin/users").get_data(as_text=True)
    db.close()


# ---- commands ----


def test_create_user_and_reset_password_commands(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    runner = app.test_cli_runner()
    r = runner.invoke(
        args=["create-user", "dora", "--admin", "--password-stdin"], input="dora's password\n"
    )
    assert r.exit_code == 0, r.output
    assert "admin 'dora' (id 1)" in r.output  # the first admin takes over user 1
    r = runner.invoke(args=["create-user", "eli", "--password-stdin"], input="short\n")
    assert r.exit_code != 0 and "at least 8" in r.output
    r = runner.invoke(args=["create-user", "eli", "--password-stdin"], input="eli's password\n")
    assert r.exit_code == 0 and "viewer 'eli'" in r.output
    client = signed_in(app, "viewer", "eli")
    r = runner.invoke(args=["reset-password", "eli", "--password-stdin"], input="a new password\n")
    assert r.exit_code == 0 and "1 session(s) ended" in r.output
    assert client.get("/account").status_code == 401
    assert login(app.test_client(), "eli", "a new password").status_code == 303
    r = runner.invoke(args=["reset-password", "nobody", "--password-stdin"], input="whatever1\n")
    assert r.exit_code != 0 and "no user" in r.output


def test_set_role_command(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    runner = app.test_cli_runner()
    for name, flags in (("dora", ["--admin"]), ("eli", [])):
        r = runner.invoke(
            args=["create-user", name, *flags, "--password-stdin"], input="pw long 1\n"
        )
        assert r.exit_code == 0, r.output
    r = runner.invoke(args=["set-role", "dora", "viewer"])
    assert r.exit_code == 1 and "the only active admin" in r.output
    eli = signed_in(app, "viewer", "eli")
    assert eli.get("/admin/users").status_code == 403
    r = runner.invoke(args=["set-role", "ELI", "admin"])  # names match in any case
    assert r.exit_code == 0 and "'eli' is now an admin." in r.output
    assert eli.get("/admin/users").status_code == 200  # from the very next request
    r = runner.invoke(args=["set-role", "dora", "viewer"])
    assert r.exit_code == 0 and "'dora' is now a viewer." in r.output
    assert (
        runner.invoke(args=["set-role", "eli", "admin"]).output.strip()
        == "'eli' is already an admin."
    )
    for bad in (["set-role", "nobody", "admin"], ["set-role", "eli", "root"]):
        r = runner.invoke(args=bad)
        assert r.exit_code != 0 and "Traceback" not in r.output


# ---- security headers ----


def test_security_headers_on_the_login_page(app) -> None:
    r = app.test_client().get("/login")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in r.get_data(as_text=True)  # no inline script for the CSP to refuse


def test_passkeys_are_explained_away_on_an_ip_address(app) -> None:
    page = app.test_client().get("/login", base_url="http://192.168.1.20:8080")
    html = page.get_data(as_text=True)
    assert "not an IP address" in html
    assert 'name="password"' in html and "data-passkey-signin" not in html
    page = app.test_client().get("/login", base_url="http://tv.local:8080")
    assert "Passkeys need HTTPS" in page.get_data(as_text=True)
    for base in ("https://tv.local", "http://localhost:8080"):
        html = app.test_client().get("/login", base_url=base).get_data(as_text=True)
        assert "data-passkey-signin" in html and 'autocomplete="username webauthn"' in html


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"handle": "nope", "credential": {}},
        {"handle": "nope", "credential": "not json"},
        {"handle": 5, "credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key"}},
        {"handle": "x", "credential": {"response": {"clientDataJSON": "%%%"}}},
    ],
)
def test_malformed_passkey_ceremonies_are_400(app, body) -> None:
    client = app.test_client(use_cookies=True)
    token = csrf_of(client.get("/login", base_url="http://localhost").get_data(as_text=True))
    headers = {"X-CSRFToken": token}
    opts = client.post("/login/passkey/options", headers=headers, base_url="http://localhost")
    handle = opts.json["handle"]
    if isinstance(body, dict) and body.get("handle") == "x":
        body["handle"] = handle
    r = client.post("/login/passkey", json=body, headers=headers, base_url="http://localhost")
    assert r.status_code == 400 and r.json["error"]
    admin = signed_in(app, "admin", "ann")
    r = admin.post("/account/passkeys", json=body, base_url="http://localhost")
    assert r.status_code == 400


def test_a_passkey_challenge_is_single_use(app) -> None:
    client = app.test_client()
    token = csrf_of(client.get("/login", base_url="http://localhost").get_data(as_text=True))
    headers = {"X-CSRFToken": token}
    handle = client.post(
        "/login/passkey/options", headers=headers, base_url="http://localhost"
    ).json["handle"]
    body = {
        "handle": handle,
        "credential": {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"},
        },
    }
    first = client.post("/login/passkey", json=body, headers=headers, base_url="http://localhost")
    again = client.post("/login/passkey", json=body, headers=headers, base_url="http://localhost")
    assert first.status_code == again.status_code == 400
    assert "already used" in again.json["error"]


def test_passkeys_are_renamed_and_deleted_only_by_their_owner(app) -> None:
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    ann = users.by_name(db, "ann").id
    with dbmod.write(db):
        key = db.execute(
            "INSERT INTO passkeys (user_id, credential_id, public_key, name, created_at) "
            "VALUES (?, x'01', x'02', 'Phone', 0)",
            [ann],
        ).lastrowid
    owner, other = signed_in(app, "admin", "ann"), signed_in(app, "viewer", "bob")
    assert other.post(f"/account/passkeys/{key}/rename", data={"name": "Mine"}).status_code == 404
    assert other.post(f"/account/passkeys/{key}/delete").status_code == 404
    assert owner.post(f"/account/passkeys/{key}/rename", data={"name": " "}).status_code == 400
    assert owner.post(f"/account/passkeys/{key}/rename", data={"name": "Tablet"}).status_code == 303
    assert 'value="Tablet"' in owner.get("/account").get_data(as_text=True)
    assert owner.post(f"/account/passkeys/{key}/delete").status_code == 303
    assert db.execute("SELECT count(*) FROM passkeys").fetchone()[0] == 0
    db.close()
