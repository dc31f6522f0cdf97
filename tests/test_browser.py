"""What a person does in a browser, with Debian's Chromium against a real gunicorn server
(gunicorn.conf.py) over a real scanned library: browse, sort and filter, scroll, play, seek,
resume after a reload, the lightbox, keyboard navigation and autoplay of the next video.

Screenshots of every page at phone (390×844) and desktop (1440×900) sizes go to /tmp/shots/.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import api_token, browser_sign_in
from tests.sample_library import Site
from tests.server import Gunicorn

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


class Server(Gunicorn):
    """A gunicorn process serving a Site, started with the project's gunicorn.conf.py."""

    def __init__(self, site: Site) -> None:
        self.site = site
        env = {
            "LVS_MEDIA_DIRS": str(site.root),
            "LVS_DATA_DIR": str(site.data),
            "LVS_WORKERS": "1",
            "LVS_THREADS": "8",
        }
        self.start(env, site.data / "gunicorn.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator[Server]:
    running = Server(Site(tmp_path_factory.mktemp("browser"), media))
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


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    # caret="initial": hiding the caret injects a <style>, which the page's CSP refuses.
    page.screenshot(path=str(SHOTS / f"{name}-{page.size_name}.png"), caret="initial")


def wait_js(page, expression: str, timeout: float = 10.0) -> None:
    """Wait until a JavaScript expression is truthy.

    Playwright's wait_for_function evaluates its predicate with eval() inside the page, which the
    page's Content-Security-Policy (script-src 'self') forbids; page.evaluate is not affected.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def card_titles(page) -> list[str]:
    return page.locator("#cards li.card .title").all_inner_texts()


def test_home_then_browse_into_a_folder(page, server):
    page.goto(server.url + "/")
    assert page.locator("#recent li.card").count() >= 10
    page.wait_for_load_state("networkidle")
    shot(page, "home")
    page.evaluate("window.sameDocument = true")  # survives boosted navigation only
    # In the page, not the header (whose "Movies" is the Movies view, issue 17).
    page.locator("main").get_by_role("link", name=re.compile(r"^Movies")).first.click()
    page.wait_for_url(re.compile(r"/browse/library/Movies$"))
    assert page.evaluate("window.sameDocument") is True  # hx-boost swapped the body
    assert card_titles(page)[0] == "h264"
    assert page.locator("nav.crumbs [aria-current=page]").inner_text() == "Movies"
    page.wait_for_load_state("networkidle")
    shot(page, "folder")
    page.get_by_role("link", name=re.compile(r"^Extras")).click()
    page.wait_for_url(re.compile(r"/Movies/Extras$"))
    assert card_titles(page) == ["bonus"]
    page.go_back()  # htmx asks the server for the page again (no history cache)
    page.wait_for_url(re.compile(r"/browse/library/Movies$"))
    wait_js(page, "document.querySelector('#cards .title')?.textContent === 'h264'")
    assert page.evaluate("window.sameDocument") is True


def test_sort_and_filter_swap_the_listing(page, server):
    page.goto(server.url + "/browse/library/Movies")
    page.evaluate("window.sameDocument = true")
    page.select_option("#f-sort", "duration")
    page.wait_for_url(re.compile(r"sort=duration"))
    wait_js(page, "document.querySelector('#cards .title')?.textContent === 'long'")
    assert "order=" not in page.url  # a new sort takes its natural order
    assert page.locator("#f-order option:checked").inner_text() == "Longest first"
    page.locator("#filters summary").click()
    page.select_option("#f-codec", "hevc")
    page.wait_for_url(re.compile(r"codec=hevc"))
    wait_js(page, "document.querySelectorAll('#cards li.card').length === 1")
    assert card_titles(page) == ["hevc"]
    page.check("#f-view-list")
    page.wait_for_selector("#cards.list")
    shot(page, "folder-list-filtered")
    assert page.evaluate("window.sameDocument") is True
    page.reload()  # the pushed URL shows the same listing on its own
    assert card_titles(page) == ["hevc"]
    assert page.locator("#cards.list").count() == 1


def test_infinite_scroll_loads_the_next_page(page, server):
    page.goto(server.url + "/browse/library/Many")
    assert page.locator("#cards li.card").count() == 60
    page.locator("#more").scroll_into_view_if_needed()
    wait_js(page, "document.querySelectorAll('#cards li.card').length === 70")
    assert card_titles(page) == [f"p{n:03d}" for n in range(70)]
    assert page.locator("#more").count() == 0


def test_keyboard_moves_between_cards(page, server):
    if page.size_name == "phone":
        pytest.skip("keyboard navigation is for desktops, TVs and headsets")
    page.goto(server.url + "/browse/library/Many")
    page.locator("#cards li.card a").first.focus()
    focused = "document.activeElement.querySelector('.title').textContent"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == "p001"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) > "p002"  # the card below, in the next row
    page.keyboard.press("End")
    assert page.evaluate(focused) == "p059"


def test_lightbox_previous_next_and_close(page, server):
    page.goto(server.url + "/browse/library/Pictures")
    links = page.locator("#cards a[data-picture]")
    first, second = (
        links.nth(0).get_attribute("data-picture"),
        links.nth(1).get_attribute("data-picture"),
    )
    links.nth(0).click()
    dialog = page.locator("#lightbox")
    assert dialog.evaluate("d => d.open") is True
    assert page.url.endswith("/browse/library/Pictures")  # no navigation
    img = dialog.locator("img")
    wait_js(page, "document.querySelector('#lightbox img').complete")
    assert img.get_attribute("src") == first
    shot(page, "lightbox")
    if page.size_name == "phone":
        y = PHONE["height"] / 2
        page.mouse.move(PHONE["width"] * 0.8, y)
        page.mouse.down()
        page.mouse.move(PHONE["width"] * 0.2, y, steps=5)
        page.mouse.up()  # a swipe to the left: next picture
    else:
        page.keyboard.press("ArrowRight")
    assert img.get_attribute("src") == second
    page.locator(".lb-prev").click()
    assert img.get_attribute("src") == first
    assert dialog.evaluate("d => d.open") is True
    page.keyboard.press("Escape")
    assert dialog.evaluate("d => d.open") is False


def test_play_seek_reload_and_resume(page, server):
    h = server.site.hash("long")
    page.goto(f"{server.url}/watch/{h}")
    video = page.locator("video")
    wait_js(page, "document.querySelector('video')?.readyState >= 1")
    shot(page, "watch")
    page.locator(".big-play").click()
    wait_js(page, "document.querySelector('video')?.currentTime > 0.5", 15)
    assert page.locator('[data-action="toggle"]').get_attribute("aria-label") == "Pause"
    page.locator("video").focus()
    page.keyboard.press("ArrowRight")  # +10 s
    wait_js(page, "document.querySelector('video')?.currentTime >= 10")
    video.evaluate("v => { v.currentTime = 120; }")
    wait_js(page, "document.querySelector('video')?.currentTime >= 120")
    with page.expect_response(re.compile(r"/progress$")) as saved:
        page.keyboard.press("k")  # pause: the position is saved at once
    assert saved.value.status == 204
    position = video.evaluate("v => v.currentTime")
    page.reload()
    wait_js(page, "document.querySelector('video')?.currentTime > 100", 15)
    resumed = video.evaluate("v => v.currentTime")
    assert abs(resumed - position) < 1.0
    assert page.locator(".resumed").is_visible()
    assert "2:0" in page.locator(".resumed").inner_text()
    page.goto(server.url + "/")
    assert page.locator(f'#continue-watching a[href="/watch/{h}"]').count() == 1
    shot(page, "home-continue")


def test_scrub_bar_shows_times(page, server):
    page.goto(f"{server.url}/watch/{server.site.hash('long')}")
    wait_js(page, "document.querySelector('video')?.readyState >= 1")
    assert page.locator(".controls-bar .total").inner_text() == "6:00"
    page.locator(".seek").evaluate(
        "s => { s.value = 90; s.dispatchEvent(new Event('input')); "
        "s.dispatchEvent(new Event('change')); }"
    )
    wait_js(page, "document.querySelector('video')?.currentTime >= 89")
    assert page.locator(".controls-bar .now").inner_text() == "1:30"


def test_unplayable_file_says_why_and_offers_the_download(page, server):
    page.goto(f"{server.url}/watch/{server.site.hash('hevc')}")
    # The player asks the server how to play it (issue 12): a transcode, and why.
    note = page.locator(".playback-note")
    note.wait_for(state="visible")
    assert "this browser has no HEVC decoder" in note.inner_text()
    assert page.locator(".watch-head").get_by_role("link", name="Download").is_visible()
    shot(page, "watch-unplayable")


def test_autoplay_goes_to_the_next_video_in_the_folder(page, server):
    if page.size_name == "phone":
        pytest.skip("one size is enough for a 7-second walk")
    ep1, ep2 = server.site.hash("ep1"), server.site.hash("ep2")
    page.goto(f"{server.url}/watch/{ep1}")
    page.locator(".big-play").click()
    page.wait_for_selector(".countdown:not([hidden])", timeout=15_000)
    page.wait_for_url(re.compile(f"/watch/{ep2}$"), timeout=15_000)
    wait_js(page, "document.querySelector('video')?.currentTime > 0.2", 15)


def test_n_and_p_walk_the_folder(page, server):
    if page.size_name == "phone":
        pytest.skip("keyboard shortcuts are for desktops, TVs and headsets")
    ep2 = server.site.hash("ep2")
    page.goto(f"{server.url}/watch/{ep2}")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(f"/watch/{server.site.hash('ep3')}$"))
    # htmx pushes the URL before it swaps the page in: wait for the new page itself.
    wait_js(page, "document.querySelector('h1')?.textContent === 'Show S01E03'")
    page.keyboard.press("p")
    page.wait_for_url(re.compile(f"/watch/{ep2}$"))
    wait_js(page, "document.querySelector('h1')?.textContent === 'Show S01E02'")


def test_scrub_preview_over_the_seek_bar(page, server):
    if page.size_name == "phone":
        pytest.skip("the preview follows a pointer over the bar; on a phone it follows the drag")
    h = server.site.hash("long")
    deadline = time.monotonic() + 60  # the server's background jobs make the sprite
    while True:
        try:
            auth = {"Authorization": "Bearer " + api_token(server.site.data)}
            asked = urllib.request.Request(f"{server.url}/media/{h}/sprite.vtt", headers=auth)
            with urllib.request.urlopen(asked, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the scrub-preview sprite was never made"
        time.sleep(0.5)
    page.goto(f"{server.url}/watch/{h}")
    assert page.locator("[data-player]").get_attribute("data-sprites") == f"/media/{h}/sprite.vtt"
    wait_js(page, "window.lvsPlayer && window.lvsPlayer.cues.length > 0")
    bar = page.locator(".seek").bounding_box()
    page.mouse.move(bar["x"] + bar["width"] * 0.5, bar["y"] + bar["height"] / 2)
    preview = page.locator(".scrub-preview")
    assert preview.is_visible()
    assert "sprite.jpg" in preview.locator(".img").evaluate("e => e.style.backgroundImage")
    assert preview.locator(".t").inner_text() in ("2:59", "3:00", "3:01")
    shot(page, "watch-scrub")
