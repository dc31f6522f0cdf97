"""Live pages and the installable app in Debian's Chromium against real gunicorn (issue 19).

A file copied into a watched folder shows on an open folder page and an open search without a
reload; a thumbnail made while the page is open replaces its placeholder; the admin's header
indicator shows a running scan; the service worker controls the page after a reload and shows
the offline page when the server cannot be reached; Chromium finds the app installable.
"""

from __future__ import annotations

import fcntl
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.chromium import ARGS, CHROMIUM, chromium, watched_tab
from tests.conftest import api_token, browser_sign_in
from tests.sample_library import Site, _variant
from tests.server import Gunicorn

pytestmark = pytest.mark.browser

LIVE_WITHIN = 5.0
SHOTS = Path("/tmp/shots")  # seconds from the copy to the card on screen (the bound)


class Server(Gunicorn):
    def __init__(self, site: Site, **env: str) -> None:
        self.site = site
        self.start(
            {
                "LVS_MEDIA_DIRS": str(site.root),
                "LVS_DATA_DIR": str(site.data),
                "LVS_WORKERS": "2",
                "LVS_THREADS": "4",
                **env,
            },
            site.data / "gunicorn.log",
        )


@pytest.fixture(scope="module")
def watched(tmp_path_factory, media) -> Iterator[Server]:
    """A server that follows the disk (inotify) and makes thumbnails in the background."""
    running = Server(
        Site(tmp_path_factory.mktemp("live"), media),
        LVS_WATCH="events",
        LVS_WATCH_DEBOUNCE="0.5",
        LVS_WATCH_SETTLE="0.3",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def tab_for(browser, server, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    browser_sign_in(context, server.url, server.site.data)
    return context


def wait_js(page, expression: str, timeout: float = 10.0) -> float:
    """Wait until a JavaScript expression is truthy; return the seconds it took."""
    start = time.monotonic()
    while not page.evaluate(expression):
        assert time.monotonic() - start < timeout, f"timed out waiting for {expression}"
        time.sleep(0.05)
    return time.monotonic() - start


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"live-{name}.png"), caret="initial")


def titles(page, region: str) -> list[str]:
    return page.locator(f"#{region} li.card .title").all_inner_texts()


def test_a_copied_file_shows_on_open_folder_and_search_pages(browser, watched, media):
    site = watched.site
    folder = browser.new_context(viewport={"width": 1280, "height": 900})
    browser_sign_in(folder, watched.url, site.data)
    with watched_tab(folder) as page:
        search = page.context.new_page()
        home = page.context.new_page()
        page.goto(f"{watched.url}/browse/{site.lib}/Movies")
        search.goto(f"{watched.url}/search?q=zebra")
        home.goto(f"{watched.url}/")
        assert "zebra" not in " ".join(titles(page, "listing"))
        assert search.locator("#results li.card").count() == 0
        for tab in (page, search, home):
            tab.evaluate("window.notReloaded = true")
            wait_js(tab, "document.getElementById('live') !== null")
        time.sleep(0.5)  # both tabs have polled once: the copy is news to them

        copied = time.monotonic()
        _variant(media["h264_mp4"], site.root / "Movies" / "zebra crossing.mp4", 77)
        wait_js(
            page,
            "[...document.querySelectorAll('#listing li.card .title')].some(t => t.textContent.includes('zebra'))",
            LIVE_WITHIN + 5,
        )
        on_folder = time.monotonic() - copied
        wait_js(
            search,
            "[...document.querySelectorAll('#results li.card .title')].some(t => t.textContent.includes('zebra'))",
            LIVE_WITHIN + 5,
        )
        on_search = time.monotonic() - copied
        assert on_folder < LIVE_WITHIN and on_search < LIVE_WITHIN, (on_folder, on_search)
        # Home's "Recently added" row, newest first: the new file leads it.
        wait_js(
            home,
            "((document.querySelector('#recent li.card .title') || {}).textContent || '').includes('zebra')",
            LIVE_WITHIN,
        )
        for tab in (page, search, home):
            assert tab.evaluate("window.notReloaded") is True  # put in place, not reloaded
        card = page.locator("#listing li.card", has_text="zebra")
        assert "live-new" in card.get_attribute("class")
        # Cards keep their order: the new one sits between its neighbours by name.
        names = titles(page, "listing")
        assert names == sorted(names, key=str.lower) or "zebra" in names[-1].lower()

        # The file goes: its card says so, where it is.
        (site.root / "Movies" / "zebra crossing.mp4").unlink()
        took = wait_js(
            page, "document.querySelector('#listing li.card.gone .gone-badge') !== null", 10
        )
        assert took < LIVE_WITHIN + 2
        assert "Removed" in page.locator("#listing li.card.gone").inner_text()
        shot(page, "removed")
        search.close()
        home.close()


COUNT_FEED = (
    "window.asked = 0; const real = window.fetch;"
    "window.fetch = (url, options) => {"
    "  if (String(url).includes('/live/feed')) window.asked += 1;"
    "  return real(url, options); };"
)


def set_visibility(page, state: str) -> None:
    """Make the page hidden or visible as a switched-away tab is (what live.js listens for)."""
    page.evaluate(
        f"Object.defineProperty(document, 'visibilityState', {{value: '{state}', configurable: true}});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )


def test_hidden_pages_stop_asking(browser, watched):
    context = tab_for(browser, watched)
    with watched_tab(context) as page:
        page.goto(f"{watched.url}/")
        page.evaluate(COUNT_FEED)
        time.sleep(4.5)
        assert page.evaluate("window.asked") >= 2  # visible: it asks every couple of seconds
        set_visibility(page, "hidden")
        time.sleep(0.3)
        before = page.evaluate("window.asked")
        time.sleep(5)
        assert page.evaluate("window.asked") == before  # hidden: not one request
        set_visibility(page, "visible")
        time.sleep(0.5)
        assert page.evaluate("window.asked") == before + 1  # shown again: it asks at once


def test_admin_indicator_shows_a_running_scan(browser, watched, media):
    site = watched.site
    context = tab_for(browser, watched)
    with watched_tab(context) as page:
        page.goto(f"{watched.url}/tags")
        wait_js(page, "document.getElementById('live-activity') !== null")
        assert page.locator("#live-activity").is_hidden()
        # Another scan holds the lock (as `flask scan` would): the watcher's scan waits for it.
        with open(site.data / "scan.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _variant(media["h264_mp4"], site.root / "Movies" / "yak.mp4", 78)
            wait_js(page, "!document.getElementById('live-activity').hidden", 10)
            text = page.locator("#live-activity").inner_text()
            assert "Scanning" in text, text
            shot(page, "indicator")
            fcntl.flock(lock, fcntl.LOCK_UN)
        wait_js(page, "document.getElementById('live-activity').hidden", 20)


@pytest.fixture(scope="module")
def still(tmp_path_factory, media) -> Iterator[Server]:
    """A server that makes no thumbnails itself (LVS_BACKGROUND=off): the CLI makes them."""
    running = Server(Site(tmp_path_factory.mktemp("still"), media), LVS_BACKGROUND="off")
    yield running
    running.stop()


def test_a_thumbnail_made_while_the_page_is_open_fills_in(browser, still):
    site = still.site
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/browse/{site.lib}/Movies")
        h = site.hash("h264")
        img = f"document.querySelector('#listing li.card a[href*=\"{h}\"] img')"
        wait_js(page, f"{img}.complete && {img}.naturalHeight > 0")
        assert page.evaluate(f"{img}.naturalHeight") == 180  # the placeholder
        page.evaluate("window.notReloaded = true")
        result = site.app.test_cli_runner().invoke(args=["thumbnails", "--missing"])
        assert result.exit_code == 0, result.output
        wait_js(page, f"{img}.complete && {img}.naturalHeight === 240", 8)  # the real one
        assert page.evaluate("window.notReloaded") is True


def test_service_worker_controls_after_reload_and_serves_the_offline_page(browser, still):
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/")
        wait_js(
            page, "navigator.serviceWorker.ready.then(() => true) && !!navigator.serviceWorker", 5
        )
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        wait_js(page, "navigator.serviceWorker.controller !== null", 10)
        context.set_offline(True)
        page.goto(f"{still.url}/search", wait_until="load")
        assert "The server is not answering — is it on?" in page.locator("h1").inner_text()
        assert page.locator("#retry").count() == 1
        context.set_offline(False)
        page.locator("#retry").click()
        page.wait_for_load_state("load")
        assert page.locator("#search-form").count() == 1  # retried: the page itself


def test_chromium_finds_the_app_installable(browser, still, tmp_path):
    # A profile on disk: Chromium never offers to install from an incognito (throwaway) context.
    base = still.url.replace("127.0.0.1", "localhost")  # a secure context, as HTTPS would be
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS
    )
    browser_sign_in(context, base, still.site.data)
    with watched_tab(context) as page:
        page.goto(base + "/")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        cdp = context.new_cdp_session(page)
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [] and '"standalone"' in manifest["data"]


def play_muted(page) -> None:
    page.evaluate(
        "(() => { const v = document.querySelector('[data-player] video'); v.muted = true;"
        " return v.play().then(() => true); })()"
    )
    wait_js(page, "document.querySelector('[data-player] video').currentTime > 0.2")


def test_media_session_names_the_video_and_moves_through_up_next(browser, still):
    site = still.site
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/watch/{site.hash('ep1')}")
        play_muted(page)
        title = page.locator(".watch-head h1").inner_text()
        meta = page.evaluate(
            "(() => { const m = navigator.mediaSession.metadata;"
            " return {title: m.title, artist: m.artist, album: m.album,"
            " art: m.artwork.map(a => a.src), state: navigator.mediaSession.playbackState}; })()"
        )
        assert meta["title"] == title and meta["state"] == "playing"
        assert meta["art"] and f"/media/{site.hash('ep1')}/thumb" in meta["art"][0]
        assert meta["album"] == "Season 1", meta  # the show's season, from the file name
        handlers = "Object.keys(window.lvsMediaSession.handlers).filter(k => window.lvsMediaSession.handlers[k])"
        assert {"play", "pause", "seekbackward", "seekforward", "seekto", "nexttrack"} <= set(
            page.evaluate(handlers)
        )
        page.evaluate("window.lvsMediaSession.handlers.pause()")
        wait_js(page, "navigator.mediaSession.playbackState === 'paused'")
        at = page.evaluate("document.querySelector('[data-player] video').currentTime")
        page.evaluate("window.lvsMediaSession.handlers.seekforward({})")
        assert page.evaluate("document.querySelector('[data-player] video').currentTime") > at + 0.5

        next_url = page.locator("#next-link").get_attribute("href")
        page.evaluate("window.lvsMediaSession.handlers.nexttrack()")
        wait_js(page, f"location.pathname === {next_url!r}")
        wait_js(page, "document.querySelector('[data-player] video').currentTime > 0.2")  # starts
        wait_js(
            page,
            "navigator.mediaSession.metadata &&"
            " navigator.mediaSession.metadata.title === document.querySelector('.watch-head h1').textContent",
        )
        assert page.evaluate("navigator.mediaSession.metadata.title") != title
        page.evaluate("window.lvsMediaSession.handlers.previoustrack()")
        wait_js(page, f"location.pathname === '/watch/{site.hash('ep1')}'")
        wait_js(
            page,
            f"navigator.mediaSession.metadata && navigator.mediaSession.metadata.title === {title!r}",
        )


def test_picture_in_picture_keeps_reporting_progress(browser, still):
    site = still.site
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/watch/{site.hash('long')}")
        assert page.evaluate("document.pictureInPictureEnabled") is True
        button = page.locator("[data-player] .controls-bar [data-pip]")
        assert button.count() == 1
        play_muted(page)
        button.click()
        wait_js(
            page,
            "document.pictureInPictureElement === document.querySelector('[data-player] video')",
        )
        reports = []
        page.on("request", lambda r: reports.append(r.url) if r.url.endswith("/progress") else None)
        set_visibility(page, "hidden")  # the person went to another app; the video floats
        time.sleep(6)
        assert reports, "no progress report while in picture-in-picture"
        set_visibility(page, "visible")
        button.click()
        wait_js(page, "document.pictureInPictureElement === null")


def test_slideshow_advances_and_holds_the_wake_lock(browser, still):
    site = still.site
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/browse/{site.lib}/Pictures")
        page.locator("#cards a[data-picture]").first.click()
        wait_js(page, "document.getElementById('lightbox').open")
        dialog = page.locator("#lightbox")
        dialog.locator(".slideshow select").select_option("2")
        dialog.locator("[data-slideshow]").click()
        wait_js(page, "window.lvsSlideshow.state().locked")  # the screen stays on
        img = "document.querySelector('#lightbox img').getAttribute('src')"
        seen = [page.evaluate(img)]
        for _ in range(2):
            wait_js(page, f"{img} !== {seen[-1]!r}", 5)
            seen.append(page.evaluate(img))
        assert len(set(seen)) == 3
        shot(page, "slideshow")
        set_visibility(page, "hidden")
        wait_js(page, "!window.lvsSlideshow.state().locked && window.lvsSlideshow.state().paused")
        held = page.evaluate(img)
        time.sleep(2.5)
        assert page.evaluate(img) == held  # hidden: the show waits
        set_visibility(page, "visible")
        wait_js(page, "window.lvsSlideshow.state().locked")
        dialog.locator("[data-slideshow]").click()  # stop
        assert page.evaluate("window.lvsSlideshow.state()") == {
            "running": False,
            "paused": False,
            "locked": False,
        }
        dialog.locator("[data-slideshow]").click()
        wait_js(page, "window.lvsSlideshow.state().locked")
        page.keyboard.press("Escape")  # closing the lightbox stops the show
        wait_js(page, "!window.lvsSlideshow.state().running && !window.lvsSlideshow.state().locked")


def test_a_rating_from_another_device_shows_on_the_watch_page(browser, still):
    site = still.site
    h = site.hash("vp9")
    context = tab_for(browser, still)
    with watched_tab(context) as page:
        page.goto(f"{still.url}/watch/{h}")
        assert page.locator("#rating [data-average]").inner_text() == "Not rated yet"
        page.evaluate("window.notReloaded = true")
        # The same person on their phone: the API with their token (the browser's own account).
        token = api_token(site.data, "admin")
        request = urllib.request.Request(
            f"{still.url}/api/ratings/{h}",
            data=json.dumps({"rating": 4}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200
        wait_js(
            page,
            "document.querySelector('#rating [data-average]').textContent.includes('from 1 rating')",
            LIVE_WITHIN,
        )
        assert page.locator("#rating .star.on").count() == 4  # their own stars, as set elsewhere
        assert page.evaluate("window.notReloaded") is True


def test_new_cards_above_the_screen_wait_behind_a_pill(browser, watched):
    site = watched.site
    context = browser.new_context(viewport={"width": 800, "height": 600})
    browser_sign_in(context, watched.url, site.data)
    with watched_tab(context) as page:
        page.goto(f"{watched.url}/browse/{site.lib}/Many")
        page.mouse.wheel(0, 900)  # reading further down: new cards at the top would move it
        wait_js(page, "window.scrollY > 300")
        first = page.locator("#cards li.card .title").first.inner_text()
        Image.new("RGB", (48, 32), (9, 9, 9)).save(site.root / "Many" / "a000 new.png")
        wait_js(page, "document.querySelector('#listing .live-pill') !== null", LIVE_WITHIN + 2)
        assert page.locator("#listing .live-pill").inner_text() == "1 new"
        shot(page, "pill")
        assert page.locator("#cards li.card .title").first.inner_text() == first  # nothing moved
        page.locator("#listing .live-pill").click()
        wait_js(page, "document.querySelector('#cards li.card .title').textContent === 'a000 new'")
        assert page.locator("#listing .live-pill").count() == 0
