"""In Chromium against a real gunicorn: an admin promotes a viewer and demotes themselves on the
people page (htmx, no reload; then the admin pages are closed to them), and a tag page with more
items than one page fills in as it scrolls, each item once. Screenshots: /tmp/shots/roles-*.png,
/tmp/shots/tag-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.chromium import chromium, watched_tab
from tests.conftest import TEST_PASSWORD, browser_sign_in
from tests.server import Gunicorn
from tests.test_browser import SHOTS, wait_js

pytestmark = pytest.mark.browser
PICTURES = 75  # more than one page of 60


class OneWorker(Gunicorn):
    """gunicorn with one worker over a folder of small pictures, scanned first."""

    def __init__(self, base: Path) -> None:
        from config import load_settings
        from services import db as dbmod
        from services.people import users
        from tests.sample_library import scan_library

        self.root = base / "library"
        (self.root / "Shots").mkdir(parents=True)
        for n in range(PICTURES):
            colour = ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256)
            Image.new("RGB", (64, 36), colour).save(self.root / "Shots" / f"s{n:03d}.png")
        self.data = base / "data"
        settings = load_settings(
            {"media_dirs": [str(self.root)], "data_dir": str(self.data), "probe_workers": 1},
            environ={},
            dotenv_path=base / "no.env",
        )
        scan_library(settings)
        db = dbmod.open_db(self.data)
        try:
            users.create(db, "test-admin", "admin", TEST_PASSWORD, rounds=4)
            users.create(db, "bob", "viewer", TEST_PASSWORD, rounds=4)
        finally:
            db.close()
        env = {
            "LVS_MEDIA_DIRS": str(self.root),
            "LVS_DATA_DIR": str(self.data),
            "LVS_WORKERS": "1",
            "LVS_THREADS": "4",
            "LVS_PROBE_WORKERS": "1",
        }
        self.start(env, base / "gunicorn.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneWorker]:
    running = OneWorker(tmp_path_factory.mktemp("roles-tags-browser"))
    yield running
    running.stop()


def open_page(server, role: str, size: dict[str, int]):
    """Yield a signed-in tab; fail on page errors (CSP violations included)."""
    with chromium() as browser:
        context = browser.new_context(viewport=size)
        browser_sign_in(context, server.url, server.data, role)
        with watched_tab(context) as tab:
            yield tab


def test_tag_page_scrolls_through_every_item_once(server):
    from services import db as dbmod
    from services.organize import metacache, tags

    db = dbmod.open_db(server.data)
    try:
        mids = [r[0] for r in db.execute("SELECT id FROM media ORDER BY id").fetchall()]
        tags.change(db, metacache.MetaCache(), mids, ["Holiday snaps"], add=True)
    finally:
        db.close()
    assert len(mids) == PICTURES
    for size, name in (
        ({"width": 1440, "height": 900}, "desktop"),
        ({"width": 390, "height": 844}, "phone"),
    ):
        for tab in open_page(server, "viewer", size):
            tab.goto(server.url + "/tag/Holiday%20snaps")
            assert tab.locator("#cards li.card").count() == 60
            assert f"{PICTURES} items" in tab.locator("h1").inner_text()
            assert tab.locator("summary", has_text="Rename or merge").count() == 0  # admins only
            tab.wait_for_load_state("networkidle")
            SHOTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(SHOTS / f"tag-{name}.png"))
            tab.evaluate("window.sameDocument = true")
            tab.locator("#more").scroll_into_view_if_needed()
            wait_js(tab, f"document.querySelectorAll('#cards li.card').length === {PICTURES}")
            hrefs = tab.eval_on_selector_all("#cards li.card > a", "els => els.map(a => a.href)")
            assert len(set(hrefs)) == PICTURES
            assert tab.locator("#more").count() == 0  # the end: no sentinel left
            assert tab.evaluate("window.sameDocument") is True
            tab.screenshot(path=str(SHOTS / f"tag-{name}-end.png"), full_page=name == "phone")
    for tab in open_page(server, "admin", {"width": 1440, "height": 900}):
        tab.goto(server.url + "/tag/Holiday%20snaps")
        tab.locator("summary", has_text="Rename or merge").click()
        tab.get_by_label("New name").fill("Holidays")
        tab.screenshot(path=str(SHOTS / "tag-admin.png"))
        tab.get_by_role("button", name="Rename").click()
        tab.wait_for_url(re.compile(r"/tag/Holidays$"))
        assert tab.locator("#cards li.card").count() == 60


def test_admin_promotes_a_viewer_then_demotes_themselves(server):
    for tab in open_page(server, "admin", {"width": 1440, "height": 900}):
        tab.goto(server.url + "/admin/users")
        bob = tab.locator('li[data-user="bob"]')
        me = tab.locator('li[data-user="test-admin"]')
        assert "the only admin" in me.inner_text()  # no demotion offered to the only admin
        SHOTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(SHOTS / "roles-before.png"), full_page=True)
        tab.evaluate("window.sameDocument = true")
        bob.get_by_role("button", name="Make admin").click()
        wait_js(tab, "document.querySelector('li[data-user=\"bob\"]').dataset.role === 'admin'")
        assert tab.evaluate("window.sameDocument") is True  # the region swapped, no reload
        assert "bob is now an admin." in tab.locator("#users [role=status]").inner_text()
        assert me.get_by_role("button", name="Make me a viewer").is_visible()
        tab.screenshot(path=str(SHOTS / "roles-promoted.png"), full_page=True)

        tab.once("dialog", lambda dialog: dialog.accept())
        me.get_by_role("button", name="Make me a viewer").click()
        tab.wait_for_url(re.compile(r"/account$"))
        assert "You are now a viewer" in tab.locator("main").inner_text()
        assert "viewer" in tab.locator("h1").inner_text()
        assert tab.get_by_role("link", name="Admin", exact=True).count() == 0
        tab.screenshot(path=str(SHOTS / "roles-self-demoted.png"))
        response = tab.goto(server.url + "/admin/users")
        assert response is not None and response.status == 403
