"""The household's UI as a person sees it (issue 16), in Debian's Chromium against gunicorn, at
three sizes: desktop (1440×900, mouse), phone (390×844, touch) and TV/headset (1280×720, coarse
pointer). Each defect of the issue has a test here that fails on the code before the fix."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.sample_library import Site
from tests.screenshots import SIZES, ShotServer
from tests.test_browser import wait_js

pytestmark = pytest.mark.browser

TOUCH = ("phone", "tv")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator:
    running = ShotServer(Site(tmp_path_factory.mktemp("ui-browser"), media))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def open_tab(browser, server, size: str, role: str = "admin"):
    context = browser.new_context(device_scale_factor=1, **SIZES[size])
    browser_sign_in(context, server.url, server.site.data, role)
    return watched_tab(context)


@pytest.fixture(params=list(SIZES))
def tab(request, browser, server):
    with open_tab(browser, server, request.param) as t:
        t.size_name = request.param
        yield t


def visible(page, selector: str) -> bool:
    return page.locator(selector).first.is_visible()


def no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url}: {width} px wide"


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found, f"{selector} is not on screen"
    return found


# ---- the header: one row, at every size, whatever the breadcrumb ----


def test_header_is_one_row_and_no_page_overflows(tab, server):
    lib = server.site.lib
    pages = ["/", f"/browse/{lib}/Movies/Extras", f"/watch/{server.site.hash('bonus')}"]
    pages += ["/search?q=show", "/playlists", "/history", "/account", "/admin/performance"]
    heights = []
    for path in pages:
        tab.goto(server.url + path)
        header = box(tab, "header.top")
        heights.append(header["height"])
        no_horizontal_overflow(tab)
        # the search box and the menu sit in the header's one row
        for part in (".quick-search input", ".menu > summary"):
            inner = box(tab, part)
            assert (
                header["y"] <= inner["y"]
                and inner["y"] + inner["height"] <= header["y"] + header["height"]
            )
    assert max(heights) - min(heights) < 1, heights  # a three-level breadcrumb does not wrap it
    if tab.size_name == "phone":
        assert max(heights) <= 64
    else:
        assert max(heights) <= 80


def test_phone_menu_holds_the_places(browser, server):
    with open_tab(browser, server, "phone") as page:
        page.goto(server.url + "/")
        assert not page.get_by_role("link", name="Playlists").is_visible()
        page.locator(".menu > summary").click()
        for name in ("Tags", "Playlists", "History", "Your account", "Dashboard", "People"):
            assert page.get_by_role("link", name=name, exact=True).is_visible(), name
        assert page.get_by_role("button", name="Sign out").is_visible()
        page.get_by_role("link", name="Playlists", exact=True).click()
        page.wait_for_url(re.compile(r"/playlists$"))
        assert not visible(page, ".menu-panel")


def test_select_mode_bar_stays_small_on_a_phone(browser, server):
    with open_tab(browser, server, "phone") as page:
        page.goto(f"{server.url}/browse/{server.site.lib}/Movies")
        page.locator("[data-select-toggle]").click()
        bar = box(page, "#selection-bar")
        assert bar["height"] <= 72, bar
        no_horizontal_overflow(page)


# ---- touch targets ----


def assert_targets(page, selector: str, minimum: float = 44) -> int:
    small = []
    count = 0
    for handle in page.locator(selector).all():
        if not handle.is_visible():
            continue
        b = handle.bounding_box()
        count += 1
        if b["height"] < minimum - 0.5 or b["width"] < minimum - 0.5:
            small.append(
                (handle.evaluate("e => e.outerHTML.slice(0, 80)"), b["width"], b["height"])
            )
    assert small == [], small
    return count


@pytest.mark.parametrize("size", TOUCH)
def test_touch_targets_are_at_least_44_px(browser, server, size):
    site = server.site
    with open_tab(browser, server, size) as page:
        page.goto(f"{server.url}/browse/{site.lib}/Movies")
        page.locator("#filters summary").click()
        assert assert_targets(page, "#listing label.check, .controls .options label") >= 4
        assert_targets(
            page, "#listing select, #listing summary, header a, header summary, header input"
        )
        page.goto(f"{server.url}/watch/{site.hash('long')}")
        page.evaluate("lvsPlayer.root.querySelector('.resumed').hidden = false")  # "Start over"
        assert_targets(page, ".resumed button, #organize button, #organize a, #organize select")
        assert_targets(page, ".controls-bar button:not([disabled])")
        full = box(page, ".controls-bar [data-action=fullscreen]")  # not cut off by the bar
        assert full["x"] + full["width"] <= page.viewport_size["width"]
        assert page.locator(".controls-bar [data-action=fullscreen]").is_visible()
        page.goto(f"{server.url}/playlists")
        page.locator("input[name=name]").fill("Touch")
        page.get_by_role("button", name="Create").click()
        page.wait_for_url(re.compile(r"/playlists/\d+"))
        pid = page.url.rsplit("/", 1)[1]
        for key in ("h264", "hevc"):
            page.evaluate(
                """async ([path, media]) => {
                  const token = document.querySelector('meta[name=csrf-token]').content;
                  await fetch(path, {method: 'POST', headers: {'X-CSRFToken': token},
                                     body: new URLSearchParams({media})});
                }""",
                [f"/playlists/{pid}/add", site.hash(key)],
            )
        page.reload()
        assert assert_targets(page, ".playlist-items button") == 6  # ↑ ↓ ✕ twice
        page.goto(f"{server.url}/account")
        assert_targets(page, "#main button, #main input:not([type=hidden]), #main select")
        page.locator(".menu > summary").click()
        assert_targets(page, ".menu-panel a, .menu-panel button")


# ---- the watch page ----


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_next_video_countdown_shows_only_when_a_video_ends(browser, server, size):
    with open_tab(browser, server, size) as page:
        page.goto(f"{server.url}/watch/{server.site.hash('h264')}")
        assert page.locator("#next-link").count() == 1
        assert not page.locator(".countdown").is_visible()
        page.evaluate("document.querySelector('video').dispatchEvent(new Event('ended'))")
        assert page.locator(".countdown").is_visible()
        url = page.url
        page.get_by_role("button", name="Cancel").click()
        assert not page.locator(".countdown").is_visible()
        time.sleep(5.5)  # the countdown would have gone to the next video by now
        assert page.url == url


def test_question_mark_shows_the_shortcuts_that_apply(browser, server):
    site = server.site
    with open_tab(browser, server, "desktop") as page:
        page.goto(f"{server.url}/watch/{site.hash('h264')}")
        assert page.locator("details.shortcuts").count() == 0  # no list left on the page itself
        page.keyboard.press("?")
        dialog = page.locator("#shortcuts")
        assert dialog.is_visible()
        assert dialog.get_by_text("play or pause").is_visible()
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        page.goto(f"{server.url}/watch/{site.hash('photo')}")
        page.keyboard.press("?")
        assert dialog.is_visible() and not dialog.get_by_text("play or pause").is_visible()
    with open_tab(browser, server, "phone") as page:  # no keyboard: no shortcut entry in the menu
        page.goto(f"{server.url}/watch/{site.hash('h264')}")
        page.locator(".menu > summary").click()
        assert not page.get_by_role("button", name="Keyboard shortcuts").is_visible()


def test_full_screen_hides_the_strip_and_fades_the_controls(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(f"{server.url}/watch/{server.site.hash('long')}")
        page.locator(".big-play").click()
        wait_js(page, "document.querySelector('video').currentTime > 0.3", 15)
        page.evaluate("lvsPlayer.root.querySelector('.resumed').hidden = false")
        page.keyboard.press("f")
        wait_js(page, "document.fullscreenElement?.matches('[data-player]')")
        assert not page.locator(".resumed").is_visible()
        bar = page.locator(".controls-bar")
        page.mouse.move(300, 300)
        assert bar.evaluate("e => getComputedStyle(e).position") == "absolute"  # over the video
        wait_js(page, "document.querySelector('[data-player]').classList.contains('idle')", 6)
        time.sleep(0.4)  # the fade
        assert float(bar.evaluate("e => getComputedStyle(e).opacity")) < 0.05
        page.mouse.move(400, 420)
        wait_js(page, "!document.querySelector('[data-player]').classList.contains('idle')")


# ---- folders: selection, filters, rows ----


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_click_in_select_mode_selects_only(browser, server, size):
    with open_tab(browser, server, size) as page:
        page.goto(f"{server.url}/browse/{server.site.lib}/Pictures")
        page.locator("[data-select-toggle]").click()
        page.locator("ul.cards > li.card.picture").first.click()
        assert page.locator("li.card.selected").count() == 1
        assert not page.locator("#lightbox").is_visible()
        assert "/browse/" in page.url


def test_a_filter_that_matches_nothing_says_so_and_clears(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(f"{server.url}/browse/{server.site.lib}/Movies")
        assert page.locator("#result-count").inner_text().strip() == "8 items"
        page.locator("#filters summary").click()
        page.select_option("#f-resolution", "1080p")
        wait_js(page, "document.querySelector('.empty-state') !== null")
        assert "0 of 8 items match" in page.locator("#result-count").inner_text()
        page.locator(".empty-state [data-clear-filters]").click()
        wait_js(page, "document.querySelectorAll('#cards li.card').length === 8")
        assert page.locator("#result-count").inner_text().strip() == "8 items"
        assert "resolution" not in page.url


def test_home_rows_scroll_by_arrow_buttons(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(server.url + "/")
        row = page.locator("#recent ul.cards.row")
        nxt = page.locator("#recent .row-arrow.next")
        assert nxt.is_visible() and not page.locator("#recent .row-arrow.prev").is_visible()
        nxt.click()
        wait_js(page, "document.querySelector('#recent ul.cards.row').scrollLeft > 200")
        assert page.locator("#recent .row-arrow.prev").is_visible()
        assert row.evaluate("e => e.scrollWidth > e.clientWidth")
        no_horizontal_overflow(page)
    with open_tab(browser, server, "phone") as page:  # touch: swipe, no arrows
        page.goto(server.url + "/")
        assert not page.locator("#recent .row-arrow.next").is_visible()


def test_cards_show_progress_and_time_left(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(server.url + "/")
        page.evaluate(
            """async (path) => {
              const token = document.querySelector('meta[name=csrf-token]').content;
              await fetch(path, {method: 'POST', headers: {'X-CSRFToken': token},
                body: new URLSearchParams({position: '120', duration: '360', viewing: 'x'})});
            }""",
            f"/watch/{server.site.hash('long')}/progress",
        )
        page.reload()
        card = page.locator("#continue-watching li.card", has_text="long")
        assert card.locator("progress").is_visible()
        assert card.locator(".left").inner_text() == "4 min left"
        page.goto(server.url + "/history")
        assert page.locator("ol.cards.grid li.card img").count() >= 1
        assert page.locator("ol.cards li.card", has_text="long").locator(".left").is_visible()


# ---- search ----


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_header_box_suggests_as_you_type(browser, server, size):
    with open_tab(browser, server, size) as page:
        page.goto(server.url + "/")
        box_ = page.locator(".quick-search input")
        box_.press_sequentially("lon", delay=50)
        page.wait_for_selector("#suggest a[href*='/watch/']")
        assert page.locator("#suggest").get_by_text("long", exact=True).is_visible()
        no_horizontal_overflow(page)
        box_.fill("")
        box_.press_sequentially("lomg", delay=50)
        page.wait_for_selector("#suggest [data-correction]")
        assert "Did you mean long?" in page.locator("#suggest").inner_text()
        box_.press("ArrowDown")
        box_.press("Enter")
        page.wait_for_url(re.compile(r"/search\?q=long"))
        assert page.locator("#results li.card").count() >= 1


def test_the_search_page_suggests_the_nearest_word(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(server.url + "/search?q=bonsu")
        assert "Did you mean bonus?" in page.locator("#results").inner_text()
        page.locator("#results [data-correction]").click()
        page.wait_for_url(re.compile(r"q=bonus"))
        assert page.locator("#results li.card").count() == 1


# ---- admin pages ----


def test_the_dashboard_is_in_the_admin_menu_and_viewers_get_a_styled_refusal(browser, server):
    with open_tab(browser, server, "desktop") as page:
        page.goto(server.url + "/")
        page.locator(".menu > summary").click()
        page.get_by_role("link", name="Dashboard").click()
        page.wait_for_url(re.compile(r"/admin/performance$"))
    with open_tab(browser, server, "desktop", role="viewer") as page:
        page.goto(server.url + "/")
        page.locator(".menu > summary").click()
        assert page.get_by_role("link", name="Dashboard").count() == 0
        response = page.goto(server.url + "/admin/performance")
        assert response.status == 403
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == "Not for this account"
        assert page.locator("header.top").is_visible()  # the whole styled page, not plain text
        assert page.get_by_role("link", name="Back to the library").is_visible()
