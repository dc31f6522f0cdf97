"""Default deny, swept over every rule in app.url_map: without a session each route answers 302
to the sign-in page (a page a browser navigates to) or 401 (media, JSON, htmx, writes); a viewer
gets 403 on every admin route; only the public allowlist below answers anyone."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.routing import IntegerConverter, Rule

from blueprints import access
from tests.conftest import make_user, signed_in
from tests.test_auth import make_app

# Reviewed by hand: adding to this list makes a route answer people who have not signed in.
PUBLIC = {
    "static",
    "assets.file",  # the same static files under a versioned path (blueprints/assets.py)
    "auth.login",
    "auth.setup",
    "auth.passkey_login_options",
    "auth.passkey_login",
    "health.health",
    "health.livez",
    "health.readyz",
    "live.service_worker",
    "live.manifest",
    "live.offline",
}
# Reviewed by hand: the VR players' APIs (blueprints/vr_api.py) check their own credentials
# (form fields, HereSphere's auth-token) and answer someone not signed in with their format's
# "not authorized" (HTTP 200, nothing of the library); they never write on a session cookie.
SELF_AUTHENTICATED = ("vr_api.",)
HTML = {"Accept": "text/html,application/xhtml+xml"}
SAMPLE = {"media_hash": "0123456789abcdef", "int": "1", "path": "a/b", "default": "x"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    base: Path = tmp_path_factory.mktemp("access")
    application = make_app(base)
    make_user(base / "data", "admin", "ann")
    make_user(base / "data", "viewer", "bob")
    return application


def url_for_rule(rule: Rule) -> str:
    values = {}
    for name, converter in rule._converters.items():  # noqa: SLF001
        kind = type(converter).__name__.lower().replace("converter", "")
        if name == "media_hash":
            values[name] = SAMPLE["media_hash"]
        elif isinstance(converter, IntegerConverter):
            values[name] = 1
        elif kind == "path":
            values[name] = SAMPLE["path"]
        else:
            values[name] = SAMPLE["default"]
    if rule.endpoint == "static":
        values["filename"] = "css/app.css"
    return rule.build(values, append_unknown=False)[1]


def cases(app) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url_for_rule(rule)))
    return found


def test_the_public_allowlist_is_the_reviewed_one() -> None:
    assert access.PUBLIC_ENDPOINTS == PUBLIC
    assert access.SELF_AUTHENTICATED == SELF_AUTHENTICATED


def not_authorized(r) -> bool:
    """Return whether a VR API answer says "not signed in" and shows nothing."""
    body = r.get_json(silent=True) or {}
    return r.status_code == 200 and (
        body in ({"authorized": "0"}, {"authorized": "0", "scenes": []}, {"access": 0},
                 {"access": 0, "library": []}, {"auth-token": "", "access": -1})
    )  # fmt: skip


def test_the_sweep_covers_every_blueprint(app) -> None:
    blueprints = {endpoint.split(".")[0] for endpoint, _, _ in cases(app)}
    assert {"gallery", "watch", "media", "health", "auth", "account", "admin_users"} <= blueprints
    assert len(cases(app)) > 20


def test_every_route_needs_a_session(app) -> None:
    client = app.test_client()
    wrong = []
    for endpoint, method, url in cases(app):
        r = client.open(url, method=method, headers=HTML)
        if endpoint.startswith(SELF_AUTHENTICATED):
            if not not_authorized(r):
                wrong.append((endpoint, method, url, r.status_code, "not 'not authorized'"))
            continue
        if endpoint in PUBLIC:
            if r.status_code in (401, 403) or r.headers.get("Location", "").startswith("/login?"):
                wrong.append((endpoint, method, url, r.status_code, "public route refused"))
            continue
        page = method == "GET" and not endpoint.startswith("media.")
        if page:
            ok = r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
        else:
            ok = r.status_code == 401
        if not ok:
            wrong.append((endpoint, method, url, r.status_code, "expected 302" if page else "401"))
    assert not wrong, "\n".join(map(str, wrong))


def test_htmx_and_api_requests_get_401_not_a_redirect(app) -> None:
    client = app.test_client()
    for endpoint, method, url in cases(app):
        if endpoint in PUBLIC or method != "GET" or endpoint.startswith(SELF_AUTHENTICATED):
            continue
        r = client.get(url, headers={"HX-Request": "true", "Accept": "*/*"})
        assert r.status_code == 401, (endpoint, url, r.status_code)
        if endpoint.startswith("media."):
            continue
        r = client.get(url, headers={"Accept": "application/json"})
        assert r.status_code == 401, (endpoint, url, r.status_code)


def test_a_viewer_gets_403_on_every_admin_route(app) -> None:
    viewer, admin = signed_in(app, "viewer", "bob"), signed_in(app, "admin", "ann")
    admin_cases = [c for c in cases(app) if c[0].split(".")[0].startswith("admin")]
    assert admin_cases, "no admin routes found"
    for endpoint, method, url in admin_cases:
        r = viewer.open(url, method=method, headers=HTML)
        assert r.status_code == 403, (endpoint, method, url, r.status_code)
        r = admin.open(url, method=method, headers=HTML)
        assert r.status_code not in (401, 403), (endpoint, method, url, r.status_code)


def test_a_viewer_reaches_the_other_routes(app) -> None:
    viewer = signed_in(app, "viewer", "bob")
    for endpoint, method, url in cases(app):
        if endpoint.split(".")[0].startswith("admin") or method != "GET":
            continue
        r = viewer.open(url, method=method, headers=HTML)
        denied = r.status_code in (401, 403) or r.headers.get("Location", "").startswith("/login")
        assert not denied, (endpoint, url, r.status_code)


def test_writes_without_the_csrf_token_are_refused_for_signed_in_users(app) -> None:
    viewer = signed_in(app, "viewer", "bob")
    del viewer.environ_base["HTTP_X_CSRFTOKEN"]
    for endpoint, method, url in cases(app):
        if method == "GET" or endpoint in PUBLIC or endpoint.split(".")[0].startswith("admin"):
            continue
        if endpoint.startswith(SELF_AUTHENTICATED):
            continue  # no write on a session cookie (tests/test_vr_api.py checks)
        r = viewer.open(url, method=method, headers={"HX-Request": "true"})
        assert r.status_code == 400, (endpoint, method, url, r.status_code)
