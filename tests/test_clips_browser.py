"""Preview clips on cards, in Debian's Chromium against gunicorn: the server makes them in the
background; a card plays its clip on hover (desktop), keyboard focus, or a press and hold (phone),
muted, only where one exists, and nothing is fetched before (static/js/card-clips.js)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import db as dbmod
from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.sample_library import Site
from tests.screenshots import SIZES, ShotServer
from tests.test_browser import wait_js

pytestmark = pytest.mark.browser

CARD = "a[data-clip][href$='/{h}']"
VIDEO = "document.querySelector(\"a[href$='/{h}'] video.card-clip\")"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator:
    running = ShotServer(Site(tmp_path_factory.mktemp("clips-browser"), media))
    try:
        wait_for_clips(running.site, ["long", "h264"])
        yield running
    finally:
        running.stop()


def wait_for_clips(site: Site, keys: list[str], timeout: float = 180.0) -> None:
    """Wait until the server's background work has made these videos' clips (after every
    thumbnail and scrub preview of the library)."""
    wanted = {site.hash(k) for k in keys}
    deadline = time.monotonic() + timeout
    while True:
        db = dbmod.connect(site.settings.db_path)
        try:
            made = {
                r[0]
                for r in db.execute(
                    "SELECT media_hash FROM thumbs WHERE kind = 'clip' AND status = 'ok'"
                )
            }
        finally:
            db.close()
        if wanted <= made:
            return
        assert time.monotonic() < deadline, f"the server made no clip for {wanted - made}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def open_tab(browser, server, size: str):
    context = browser.new_context(device_scale_factor=1, **SIZES[size])
    browser_sign_in(context, server.url, server.site.data)
    return watched_tab(context)


def clip_requests(tab) -> list[str]:
    return tab.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/clip.mp4'))"
    )


def plays(tab, media_hash: str) -> None:
    """Wait until the card's clip plays: its currentTime advances, muted, over the poster."""
    video = VIDEO.format(h=media_hash)
    wait_js(tab, f"{video} && {video}.currentTime > 0.2", timeout=15)
    first = tab.evaluate(f"{video}.currentTime")
    wait_js(tab, f"{video}.currentTime !== {first}", timeout=5)
    assert tab.evaluate(f"{video}.muted && !{video}.paused")
    assert tab.evaluate(f"{video}.closest('.thumb').classList.contains('clip-playing')")


def test_hovering_a_card_plays_its_clip_and_leaving_stops_it(browser, server):
    site = server.site
    long, picture = site.hash("long"), site.hash("photo")
    with open_tab(browser, server, "desktop") as tab:
        tab.goto(f"{server.url}/browse/{site.lib}/Movies")
        tab.wait_for_selector(CARD.format(h=long))
        # Only videos with a clip carry one; nothing is fetched before the pointer rests.
        assert tab.locator("a[data-clip]").count() >= 2
        assert tab.locator("video").count() == 0 and clip_requests(tab) == []
        src = tab.get_attribute(CARD.format(h=long), "data-clip")
        assert src.endswith(f"/media/{long}/clip.mp4")

        tab.hover(CARD.format(h=long) + " .thumb")
        plays(tab, long)
        assert clip_requests(tab) == [server.url + src]
        # Only one plays: moving to another card takes this one down.
        tab.hover(CARD.format(h=site.hash("h264")) + " .thumb")
        plays(tab, site.hash("h264"))
        assert tab.locator("video.card-clip").count() == 1
        tab.mouse.move(5, 5)
        wait_js(tab, "document.querySelectorAll('video.card-clip').length === 0")

        tab.goto(f"{server.url}/browse/{site.lib}/Pictures")
        tab.wait_for_selector(f"a[href$='/{picture}']")
        assert tab.locator("a[data-clip]").count() == 0  # pictures have no clip


def test_keyboard_focus_plays_the_clip(browser, server):
    long = server.site.hash("long")
    with open_tab(browser, server, "tv") as tab:
        tab.goto(f"{server.url}/browse/{server.site.lib}/Movies")
        tab.focus(CARD.format(h=long))
        plays(tab, long)
        tab.keyboard.press("Tab")  # focus moves on: it stops
        wait_js(tab, f"!{VIDEO.format(h=long)}")


def test_a_press_and_hold_on_a_phone_plays_it_without_opening_the_video(browser, server):
    long = server.site.hash("long")
    with open_tab(browser, server, "phone") as tab:
        page = f"{server.url}/browse/{server.site.lib}/Movies"
        tab.goto(page)
        card = tab.locator(CARD.format(h=long) + " .thumb")
        card.scroll_into_view_if_needed()
        box = card.bounding_box()
        point = [{"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}]
        cdp = tab.context.new_cdp_session(tab)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
        time.sleep(0.8)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        plays(tab, long)
        assert tab.url == page  # the hold previewed; it did not open the video
        # A plain tap on it now opens the video.
        card.tap()
        tab.wait_for_url(f"**/watch/{long}")
