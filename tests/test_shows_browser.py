"""Shows and Movies in a browser (issue 17): Debian's Chromium against a real gunicorn server over
the Sonarr/Radarr/Kodi-style library of tests/show_library.py. Walks Shows → a show → a season →
an episode (it plays, and up next is the next episode), then Movies with its sort and filters.

Screenshots at desktop and phone sizes go to /tmp/shots/shows-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.server import Gunicorn
from tests.show_library import ShowSite
from tests.test_browser import DESKTOP, PHONE, shot, wait_js

pytestmark = pytest.mark.browser


class Server(Gunicorn):
    def __init__(self, site: ShowSite) -> None:
        self.site = site
        env = {
            "LVS_MEDIA_DIRS": ":".join(str(r) for r in site.roots),
            "LVS_DATA_DIR": str(site.data),
            "LVS_WORKERS": "1",
            "LVS_THREADS": "8",
        }
        self.start(env, site.data / "gunicorn.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator[Server]:
    running = Server(ShowSite(tmp_path_factory.mktemp("showsbrowser"), media))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def page(request, browser, server):
    context = browser.new_context(
        viewport=request.param,
        is_mobile=request.param is PHONE,
        has_touch=request.param is PHONE,
        device_scale_factor=1,
    )
    browser_sign_in(context, server.url, server.site.data)
    with watched_tab(context) as tab:
        tab.size_name = "phone" if request.param is PHONE else "desktop"
        yield tab


def test_shows_show_season_episode(page, server):
    page.goto(server.url + "/")
    if page.size_name == "desktop":  # on a phone the header's links fold away
        page.get_by_role("link", name="Shows", exact=True).click()
        page.wait_for_url(re.compile(r"/shows$"))
    else:
        page.goto(server.url + "/shows")
    titles = page.locator("#cards .title").all_inner_texts()
    assert titles == ["The Expanse", "Flat Show", "Kaiju"]
    # The poster keeps its 2:3 shape; a show without one shows a 16:9 frame grab.
    wait_js(page, "document.querySelector('#cards .thumb.art img')?.complete")
    box = page.locator("#cards .thumb.art img").first.bounding_box()
    assert box["height"] == pytest.approx(box["width"] * 1.5, rel=0.05)
    page.wait_for_load_state("networkidle")
    shot(page, "shows")
    page.get_by_role("link", name=re.compile("^The Expanse")).click()
    page.wait_for_url(re.compile(r"/shows/\d+$"))
    assert "Humanity has colonised" in page.locator(".nfo .plot").inner_text()
    assert page.locator("#seasons .title").all_inner_texts() == [
        "Season 1",
        "Season 2",
        "Season 3",
        "Specials",
    ]
    page.wait_for_load_state("networkidle")
    shot(page, "show")
    page.get_by_role("link", name=re.compile("^Season 1")).click()
    page.wait_for_url(re.compile(r"/season/1$"))
    assert page.locator("#episodes .ep-label").all_inner_texts() == [
        "S01E01",
        "S01E02",
        "S01E03-E04",
    ]
    page.wait_for_load_state("networkidle")
    shot(page, "season")
    page.locator("#episodes a").first.click()
    page.wait_for_url(re.compile(r"/watch/[0-9a-f]{16}$"))
    assert "Miller searches" in page.locator("#watch-meta").inner_text()
    assert page.locator("#quality").count() == 1
    page.evaluate("document.querySelector('video').muted = true")
    page.evaluate("document.querySelector('video').play()")
    wait_js(page, "document.querySelector('video').currentTime > 0.2")
    nxt = page.locator("#next-link").get_attribute("href")
    page.locator("#next-link").click()
    page.wait_for_url(re.compile(re.escape(nxt) + "$"))
    assert "S01E02" in page.locator("#watch-meta .ep-label").inner_text()


def test_movies_sort_and_filter(page, server):
    page.goto(server.url + "/movies")
    assert page.locator("#cards .title").all_inner_texts() == ["Arrival", "Heat", "Hostile"]
    page.evaluate("window.sameDocument = true")
    page.select_option("#m-sort", "year")
    page.wait_for_url(re.compile(r"sort=year"))
    wait_js(page, "document.querySelector('#cards .title')?.textContent === 'Arrival'")
    assert page.locator("#cards .title").all_inner_texts() == ["Arrival", "Hostile", "Heat"]
    page.wait_for_load_state("networkidle")
    shot(page, "movies")
    page.select_option("#f-genre", "Crime")
    page.wait_for_url(re.compile(r"genre=Crime"))
    wait_js(page, "document.querySelectorAll('#cards li.card').length === 1")
    assert page.evaluate("window.sameDocument") is True
    page.get_by_role("link", name=re.compile("^Heat")).click()
    page.wait_for_url(re.compile(r"/watch/[0-9a-f]{16}$"))
    assert "Al Pacino" in page.locator("#watch-meta").inner_text()
    assert page.locator("#versions a").count() == 2
    # Chromium here has no HEVC: the H.264 version opens, the HEVC 720p one is offered.
    assert "h264" in page.locator("#versions a[aria-current]").inner_text()
    assert "hevc" in page.locator("#versions a:not([aria-current])").inner_text()


def _hash(server: Server, key: str) -> str:
    db = server.site.db()
    try:
        return db.execute(
            "SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id WHERE f.name = ?",
            [server.site.files[key].name],
        ).fetchone()[0]
    finally:
        db.close()


def test_titles_in_several_versions_open_what_this_chromium_plays(page, server):
    """Heat and Kaiju EP13 are each an H.264 file and a "better" 720p HEVC one. This Chromium
    has no HEVC decoder: what its page reports (the lvs_caps cookie, sent to /play) says so, and
    both open their H.264 version — though EP13's HEVC file is first by name and best."""
    page.goto(server.url + "/movies")
    caps = {c["name"]: c for c in page.context.cookies()}["lvs_caps"]
    assert caps["path"] == "/play"
    names = set(caps["value"].split(","))
    assert {"mse", "mp4", "h264_high", "aac"} <= names and "hevc" not in names
    page.get_by_role("link", name=re.compile("^Heat")).click()
    page.wait_for_url(re.compile(r"/watch/[0-9a-f]{16}$"))
    assert page.url.endswith("/watch/" + _hash(server, "heat"))
    assert "hevc" in page.locator("#versions a").first.inner_text()  # best first, not opened
    page.goto(server.url + "/shows")
    page.get_by_role("link", name=re.compile("^Kaiju")).click()
    page.wait_for_url(re.compile(r"/shows/\d+$"))
    page.get_by_role("link", name=re.compile("^Season 1")).click()
    page.wait_for_url(re.compile(r"/season/1$"))
    ep13 = page.locator("#episodes a").nth(1)
    assert ep13.get_attribute("href") == "/play/" + _hash(server, "a13hevc")
    ep13.click()
    page.wait_for_url(re.compile(r"/watch/[0-9a-f]{16}$"))
    assert page.url.endswith("/watch/" + _hash(server, "a13"))
    page.evaluate("document.querySelector('video').muted = true")
    page.evaluate("document.querySelector('video').play()")
    wait_js(page, "document.querySelector('video').currentTime > 0.2")  # it plays, directly
    # From EP12, Next goes to EP13 the same way.
    page.goto(server.url + "/watch/" + _hash(server, "a12"))
    assert page.locator("#next-link").get_attribute("href") == "/play/" + _hash(server, "a13hevc")
    page.locator("#next-link").click()
    page.wait_for_url(re.compile(re.escape("/watch/" + _hash(server, "a13")) + "$"))
