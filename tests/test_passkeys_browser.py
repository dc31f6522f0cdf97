"""Passkeys and first-run setup in Chromium against a real gunicorn server, with the CDP virtual
authenticator (ctap2, internal, resident key, user verification): set up the first admin,
register a passkey, sign out, sign in with it; a tampered signature is refused; on an IP address
the login page says why passkeys are unavailable and the password still works. Every page is
checked for console errors (CSP violations among them)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import db as dbmod
from tests.chromium import chromium
from tests.conftest import TEST_PASSWORD, make_user
from tests.server import Gunicorn

pytestmark = pytest.mark.browser
PASSWORD = "first admin password"


class Server(Gunicorn):
    """gunicorn (gunicorn.conf.py) on an empty library and a fresh data dir: no accounts yet."""

    def __init__(self, base: Path) -> None:
        self.data = base / "data"
        (base / "lib").mkdir()
        env = {
            "LVS_MEDIA_DIRS": str(base / "lib"),
            "LVS_DATA_DIR": str(self.data),
            "LVS_WORKERS": "2",  # sessions, challenges and limits must hold across workers
            "LVS_THREADS": "4",
        }
        # localhost: a secure context over plain HTTP, as WebAuthn needs.
        self.start(env, base / "gunicorn.log", url_host="localhost", ready="/livez")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("passkeys"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture
def tab(browser):
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()


def authenticator(page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, found["authenticatorId"]


def sign_out(page, server: Server) -> None:
    # Waiting for /login only after the click is a race: with a passkey, the login page signs in
    # by itself and may already have left /login (for /) by then, on a loaded machine. The wait
    # is set up before the click, and a commit to /login is what it needs to see.
    page.click("nav.who .menu > summary")  # Sign out is in the account menu (issue 16)
    with page.expect_navigation(url=f"{server.url}/login", wait_until="commit"):
        page.click("nav.who button:has-text('Sign out')")


def test_first_run_setup_passkey_register_sign_out_and_sign_in(tab, server) -> None:
    page = tab
    page.goto(server.url + "/")
    page.wait_for_url(f"{server.url}/setup")
    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    assert page.locator("nav.who").inner_text().count("ann") == 1

    cdp, auth_id = authenticator(page)
    page.goto(server.url + "/account")
    page.fill("[data-passkey-register] input[name=name]", "Laptop")
    page.click("[data-passkey-register] button[type=submit]")
    page.wait_for_selector('[data-passkey] input[value="Laptop"]')
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
    assert len(creds) == 1 and creds[0]["isResidentCredential"]

    # Signed out, the login page offers the passkey in the name field's autofill (conditional
    # UI); the virtual authenticator answers it at once, as picking the suggestion would.
    with page.expect_response("**/login/passkey") as answer:
        sign_out(page, server)
    assert answer.value.status == 200
    page.wait_for_url(f"{server.url}/")
    assert "ann" in page.locator("nav.who").inner_text()
    counted = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
    assert counted[0]["signCount"] >= 2  # registration and the sign-in
    page.goto(server.url + "/account")
    assert "passkey" in page.locator("[data-session]").first.inner_text()
    assert not page.errors, page.errors

    # A sign counter that goes backwards means a cloned authenticator: refused.
    db = dbmod.open_db(server.data)
    with dbmod.write(db):
        db.execute("UPDATE passkeys SET sign_count = 1000000")
    db.close()
    with page.expect_response("**/login/passkey") as answer:
        sign_out(page, server)
    assert answer.value.status == 400
    assert page.url == f"{server.url}/login"


def test_a_tampered_passkey_signature_is_refused(tab, server) -> None:
    page = tab
    user = make_user(server.data, "viewer", "tess")
    # Register a passkey for tess through the browser: sign in with the password first.
    page.goto(server.url + "/login")
    page.fill("input[name=name]", "tess")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{server.url}/")
    authenticator(page)
    page.goto(server.url + "/account")
    page.fill("[data-passkey-register] input[name=name]", "Phone")
    page.click("[data-passkey-register] button[type=submit]")
    page.wait_for_selector('[data-passkey] input[value="Phone"]')

    def tamper(route) -> None:
        body = json.loads(route.request.post_data)
        raw = body["credential"]["response"]["signature"]
        sig = bytearray(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        sig[-1] ^= 0x01
        body["credential"]["response"]["signature"] = (
            base64.urlsafe_b64encode(bytes(sig)).rstrip(b"=").decode()
        )
        route.continue_(post_data=json.dumps(body))

    page.route("**/login/passkey", tamper)
    with page.expect_response("**/login/passkey") as autofill:
        sign_out(page, server)  # the login page's autofill request: tampered, refused
    assert autofill.value.status == 400
    assert 'autocomplete="username webauthn"' in page.content()
    with page.expect_response("**/login/passkey") as answer:
        page.click("[data-passkey-signin]")
    assert answer.value.status == 400
    status = page.locator("[data-passkey-status]")
    status.wait_for(state="visible")
    assert "refused" in status.inner_text()
    assert page.url == f"{server.url}/login"
    assert page.context.cookies() == [] or all(
        c["name"] != "lvs_session" for c in page.context.cookies()
    )
    page.unroute("**/login/passkey")
    page.click("[data-passkey-signin]")  # the untampered passkey still works
    page.wait_for_url(f"{server.url}/")
    assert "tess" in page.locator("nav.who").inner_text() and user.role == "viewer"
    unexpected = [e for e in page.errors if "status of 400" not in e]
    assert not unexpected, unexpected


def test_on_an_ip_address_passkeys_are_explained_and_the_password_works(tab, server) -> None:
    page = tab
    make_user(server.data, "viewer", "ivy")
    base = f"http://127.0.0.1:{server.port}"
    page.goto(base + "/login")
    notice = page.locator("[data-passkey-blocked]")
    assert "not an IP address" in notice.inner_text()
    assert page.locator("[data-passkey-signin]").count() == 0
    page.fill("input[name=name]", "ivy")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(base + "/")
    assert "ivy" in page.locator("nav.who").inner_text()
    assert not page.errors, page.errors
