"""Admins change roles on the people page: promote, demote, never the last active admin; the
change holds from the user's very next request (session or API token); plain posts and htmx;
hostile input is a clear 4xx."""

from __future__ import annotations

import logging
import re

import pytest

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.people import apitokens, users
from tests.conftest import TEST_PASSWORD, signed_in

HX = {"HX-Request": "true", "HX-Target": "users"}


@pytest.fixture
def db(app):
    database = dbmod.open_db(app.config["SETTINGS"].data_dir)
    yield database
    database.close()


def role_of(db, user_id: int) -> str:
    user = users.get(db, user_id)
    assert user is not None
    return user.role


def row_role(html: str, name: str) -> str | None:
    found = re.search(rf'<li data-user="{re.escape(name)}" data-role="(\w+)"', html)
    return found.group(1) if found else None


def test_a_viewer_cannot_change_roles(app, db):
    admin = signed_in(app, "admin", "ann")
    viewer = signed_in(app, "viewer", "bob")
    r = viewer.post(f"/admin/users/{viewer.user.id}/role", data={"role": "admin"})
    assert r.status_code == 403
    r = viewer.post(f"/admin/users/{admin.user.id}/role", data={"role": "viewer"}, headers=HX)
    assert r.status_code == 403
    token = apitokens.create(db, viewer.user.id, "tests")
    r = app.test_client().post(
        f"/admin/users/{viewer.user.id}/role",
        data={"role": "admin"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403
    assert role_of(db, viewer.user.id) == "viewer" and role_of(db, admin.user.id) == "admin"


def test_promote_and_demote_take_effect_on_the_next_request(app, db, caplog):
    admin = signed_in(app, "admin", "ann")
    bob = signed_in(app, "viewer", "bob")
    token = {"Authorization": f"Bearer {apitokens.create(db, bob.user.id, 'tests')}"}
    api = app.test_client()
    assert bob.get("/admin/users").status_code == 403
    assert api.get("/admin/users", headers=token).status_code == 403

    with caplog.at_level(logging.INFO, logger="services.people.users"):
        r = admin.post(f"/admin/users/{bob.user.id}/role", data={"role": "admin"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin/users")
    assert "bob is now an admin." in admin.get("/admin/users").get_data(as_text=True)
    assert any("viewer -> admin" in m and "'bob'" in m for m in caplog.messages)
    # The same session cookie and the same API token: no new sign-in needed.
    page = bob.get("/admin/users")
    assert page.status_code == 200 and row_role(page.get_data(as_text=True), "bob") == "admin"
    assert api.get("/admin/users", headers=token).status_code == 200

    r = admin.post(f"/admin/users/{bob.user.id}/role", data={"role": "viewer"})
    assert r.status_code == 303
    assert bob.get("/admin/users").status_code == 403
    assert bob.get("/admin/performance").status_code == 403
    assert api.get("/admin/users", headers=token).status_code == 403
    assert bob.get("/").status_code == 200  # still signed in, as a viewer
    assert 'href="/admin/users"' not in bob.get("/").get_data(as_text=True)


def test_htmx_post_returns_the_region(app, db):
    admin = signed_in(app, "admin", "ann")
    bob = signed_in(app, "viewer", "bob")
    r = admin.post(f"/admin/users/{bob.user.id}/role", data={"role": "admin"}, headers=HX)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and re.match(r'\s*<section id="users"', html)
    assert "<html" not in html and "HX-Request, HX-Target" in r.headers["Vary"]
    assert "bob is now an admin." in html and row_role(html, "bob") == "admin"
    # Two admins now: each row offers a demotion, yours as "Make me a viewer".
    assert "Make me a viewer" in html and "Make viewer" in html
    page = admin.get("/admin/users")
    assert "HX-Request, HX-Target" in page.headers["Vary"] and "<html" in page.get_data(True)


def test_the_last_active_admin_cannot_be_demoted(app, db, caplog):
    admin = signed_in(app, "admin", "ann")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "Make me a viewer" not in page and "the only admin" in page
    with caplog.at_level(logging.WARNING, logger="blueprints.admin_users"):
        r = admin.post(f"/admin/users/{admin.user.id}/role", data={"role": "viewer"})
    assert r.status_code == 400
    assert "ann is the only active admin" in r.get_data(as_text=True)
    assert any("only active admin" in m for m in caplog.messages)
    assert role_of(db, admin.user.id) == "admin"
    # With htmx: 400, and htmx is told to fetch the region, which shows the reason once.
    r = admin.post(f"/admin/users/{admin.user.id}/role", data={"role": "viewer"}, headers=HX)
    assert r.status_code == 400 and '"target": "#users"' in r.headers["HX-Location"]
    region = admin.get("/admin/users", headers=HX).get_data(as_text=True)
    assert region.count("ann is the only active admin") == 1 and 'role="alert"' in region
    assert "only active admin" not in admin.get("/admin/users").get_data(as_text=True)


def test_disabled_admins_and_unclaimed_rows_do_not_count(app, db):
    admin = signed_in(app, "admin", "ann")  # claims the default user (id 1)
    other = users.create(db, "cy", "admin", TEST_PASSWORD, rounds=4)
    users.set_disabled(db, other.id, True)
    r = admin.post(f"/admin/users/{admin.user.id}/role", data={"role": "viewer"})
    assert r.status_code == 400 and role_of(db, admin.user.id) == "admin"
    # A disabled admin may be demoted: the active ones stay.
    assert admin.post(f"/admin/users/{other.id}/role", data={"role": "viewer"}).status_code == 303
    assert role_of(db, other.id) == "viewer"
    # An admin without a password or a passkey cannot sign in: not an active admin either.
    db.execute("INSERT INTO users (name, role, created_at) VALUES ('ghost', 'admin', 0)")
    assert users.active_admins(db) == [admin.user.id]


def test_self_demotion_with_another_admin_lands_on_the_account_page(app, db):
    ann = signed_in(app, "admin", "ann")
    signed_in(app, "admin", "dee")
    r = ann.post(f"/admin/users/{ann.user.id}/role", data={"role": "viewer"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/account")
    landing = ann.get("/account")
    assert landing.status_code == 200 and "You are now a viewer" in landing.get_data(True)
    assert ann.get("/admin/users").status_code == 403
    # The other admin is now the last one; with htmx, the demotion of a second admin who is
    # yourself answers with a whole-page redirect, since the region is closed to you.
    eve = signed_in(app, "admin", "eve")
    r = eve.post(f"/admin/users/{eve.user.id}/role", data={"role": "viewer"}, headers=HX)
    assert r.status_code == 204 and r.headers["HX-Redirect"].endswith("/account")
    assert eve.get("/admin/users").status_code == 403


def test_csrf_is_checked(app, db):
    admin = signed_in(app, "admin", "ann")
    bob = signed_in(app, "viewer", "bob")
    del admin.environ_base["HTTP_X_CSRFTOKEN"]
    r = admin.post(f"/admin/users/{bob.user.id}/role", data={"role": "admin"}, headers=HX)
    assert r.status_code == 400 and role_of(db, bob.user.id) == "viewer"
    r = admin.post(f"/admin/users/{bob.user.id}/role", data={"role": "admin", "csrf_token": "x"})
    assert r.status_code == 400 and role_of(db, bob.user.id) == "viewer"


@pytest.mark.parametrize(
    ("path", "data", "status"),
    [
        ("/admin/users/999999/role", {"role": "admin"}, 404),
        ("/admin/users/" + "9" * 25 + "/role", {"role": "admin"}, 404),
        ("/admin/users/" + "9" * 19 + "/role", {"role": "admin"}, 404),
        ("/admin/users/-1/role", {"role": "admin"}, 404),
        ("/admin/users/x/role", {"role": "admin"}, 404),
        ("/admin/users/{bob}/role", {"role": "root"}, 400),
        ("/admin/users/{bob}/role", {"role": "ADMIN"}, 400),
        ("/admin/users/{bob}/role", {"role": ""}, 400),
        ("/admin/users/{bob}/role", {}, 400),
        ("/admin/users/{bob}/role", {"role": "admin\x00"}, 400),
        ("/admin/users/{bob}/role", {"role": "x" * 100_000}, 400),
    ],
)
def test_hostile_input_is_a_clear_4xx(app, db, path, data, status):
    admin = signed_in(app, "admin", "ann")
    bob = signed_in(app, "viewer", "bob")
    r = admin.post(path.format(bob=bob.user.id), data=data)
    assert r.status_code == status
    if status == 400:
        assert "role must be one of admin, viewer" in r.get_data(as_text=True)
    assert role_of(db, bob.user.id) == "viewer"
    r = admin.post(path.format(bob=bob.user.id), data=data, headers=HX)
    assert r.status_code == status


def test_service_rules_without_flask(app, db):
    ann = users.create(db, "ann", "admin", TEST_PASSWORD, rounds=4)
    bob = users.create(db, "bob", "admin", TEST_PASSWORD, rounds=4)
    assert users.set_role(db, bob.id, "admin", by=ann.id).role == "admin"  # no change, no error
    # Two admins demoting each other: the first wins; the second is no longer an admin.
    assert users.set_role(db, bob.id, "viewer", by=ann.id).role == "viewer"
    with pytest.raises(InvalidInput, match="only an active admin"):
        users.set_role(db, ann.id, "viewer", by=bob.id)
    with pytest.raises(InvalidInput, match="only active admin"):
        users.set_role(db, ann.id, "viewer", by=ann.id)
    with pytest.raises(NotFound):
        users.set_role(db, 424242, "viewer", by=ann.id)
    with pytest.raises(InvalidInput, match="role must be"):
        users.set_role(db, bob.id, "owner", by=ann.id)
    assert [u.role for u in users.list_users(db)] == ["admin", "viewer"]
