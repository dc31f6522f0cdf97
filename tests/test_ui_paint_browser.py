"""What the first paint of a page waits for, and what a repeat visit asks the server (issue 16),
in Debian's Chromium against gunicorn. A Chromium trace of home and a folder over a 100k library
(bench B16) showed the largest paint was a first-row thumbnail that only started loading once
layout had placed it (loading=lazy), after five render-blocking style sheets."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator:
    running = ShotServer(Site(tmp_path_factory.mktemp("ui-paint"), media))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def open_tab(browser, server, size: str, **options):
    context = browser.new_context(device_scale_factor=1, **SIZES[size], **options)
    browser_sign_in(context, server.url, server.site.data)
    return watched_tab(context)


IMAGES = """() => Array.from(document.querySelectorAll('main img')).map((img) => {
  const r = img.getBoundingClientRect();
  return {lazy: img.getAttribute('loading') === 'lazy', above: r.top < innerHeight && r.bottom > 0 && r.left < innerWidth};
})"""


@pytest.mark.parametrize("size", list(SIZES))
def test_thumbnails_above_the_fold_load_at_once(browser, server, size):
    folder = f"/browse/{server.site.lib}/Movies"
    with open_tab(browser, server, size) as tab:
        for path in ("/", folder, f"/browse/{server.site.lib}/Many", f"/browse/{server.site.lib}"):
            tab.goto(server.url + path)
            imgs = tab.evaluate(IMAGES)
            assert [i for i in imgs if i["above"]], path
            # every picture on screen is fetched as the HTML is read (the largest paint: on
            # home a folder's cover, wider than a row's cards), not once layout has placed it
            assert [i for i in imgs if i["above"] and i["lazy"]] == [], path
            # ... and only the first few: the rest of a long list still loads as it scrolls in
            assert len([i for i in imgs if not i["lazy"]]) <= 16, path


def test_one_style_sheet_blocks_the_first_paint(browser, server):
    with open_tab(browser, server, "desktop") as tab:
        tab.goto(server.url + "/")
        blocking = tab.evaluate(
            """() => performance.getEntriesByType('resource')
                 .filter((e) => e.renderBlockingStatus === 'blocking').map((e) => e.name)"""
        )
        assert len(blocking) == 1 and "/css/page.css" in blocking[0]
        # the joined sheet holds every part: ui.css's tokens and live.css's indicator apply
        assert tab.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--space-4')"
        )


def test_a_repeat_visit_takes_css_and_js_from_the_cache(browser, server):
    # No service worker: this is the HTTP cache alone (the worker keeps the shell besides).
    with open_tab(browser, server, "desktop", service_workers="block") as tab:
        tab.goto(server.url + "/")
        tab.wait_for_load_state("networkidle")
        first = tab.evaluate(SHIPPED)
        assert any("/js/player.js" in name for name, _ in first)  # an import, not in the HTML
        # every file, imports included, is under this release's folder: kept a year, yet a new
        # release's pages never run an old module
        assert all(name.startswith("/static/v/") for name, _ in first), first
        tab.goto(server.url + f"/browse/{server.site.lib}/Movies")
        tab.wait_for_load_state("networkidle")
        again = tab.evaluate(SHIPPED)
        assert {name for name, _ in again} >= {name for name, _ in first if "/css/" in name}
        # from the cache: nothing crossed the network, not even a revalidation
        assert [name for name, sent in again if sent != 0] == []


SHIPPED = """() => performance.getEntriesByType('resource')
  .filter((e) => /\\.(css|js|mjs)$/.test(new URL(e.name).pathname))
  .map((e) => [new URL(e.name).pathname, e.transferSize])"""


# ---- no layout shift: what loads after the first paint takes the room it will need ----

CLS_START = """() => {
  window.__cls = 0; window.__shifts = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      window.__cls += e.value;
      window.__shifts.push([Math.round(e.startTime), e.value.toFixed(3),
        e.sources.map((s) => s.node ? (s.node.id || s.node.className || s.node.nodeName) : '?').join(' ')]);
    }
  }).observe({type: 'layout-shift', buffered: true});
}"""
CLS = "() => new Promise((r) => requestAnimationFrame(() => setTimeout(() => r([window.__cls, window.__shifts]), 300)))"


@pytest.mark.parametrize("size", list(SIZES))
def test_pages_do_not_shift_as_they_load(browser, server, size):
    site = server.site
    pages = [
        "/",
        f"/browse/{site.lib}/Movies",
        f"/browse/{site.lib}/Many",
        f"/watch/{site.hash('long')}",
    ]
    pages += ["/search?q=p0", "/playlists", "/history", "/account", "/tags"]
    with open_tab(browser, server, size) as tab:
        for path in pages:
            tab.goto(server.url + path)
            tab.evaluate(CLS_START)
            tab.wait_for_load_state("networkidle")
            cls, shifts = tab.evaluate(CLS)
            assert cls < 0.1, f"{path} at {size}: CLS {cls:.3f} {shifts}"


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_next_page_loads_behind_skeletons_of_its_size(browser, server, size):
    with open_tab(browser, server, size) as tab:
        tab.goto(server.url + f"/browse/{server.site.lib}/Many")
        tab.route("**/browse/**after=**", lambda route: (time.sleep(0.6), route.continue_()))
        cards = tab.evaluate(SIZES_OF, "#cards > li.card")
        skeletons = tab.evaluate(SIZES_OF, "#more > .skel")
        bottom = tab.evaluate("document.getElementById('more').getBoundingClientRect().bottom")
        visible = [s for s in skeletons if s[3] < bottom - 1]  # the rest is clipped away
        # one row of them, each a card's width and, within a line of text, its height
        assert 1 <= len(visible) <= len({c[0] for c in cards}) + 1
        card_w, card_h = cards[0][2], cards[0][1]
        assert all(abs(s[2] - card_w) < 1 and abs(s[1] - card_h) < 24 for s in visible), (
            cards[0],
            visible,
        )
        tab.evaluate(CLS_START)
        tab.locator("#more").scroll_into_view_if_needed()
        wait_js(tab, "document.querySelectorAll('#cards li.card').length === 70")
        assert tab.locator("#more").count() == 0
        cls, shifts = tab.evaluate(CLS)
        assert cls < 0.1, shifts


SIZES_OF = """(selector) => Array.from(document.querySelectorAll(selector)).map((el) => {
  const r = el.getBoundingClientRect();
  return [Math.round(r.left), r.height, r.width, r.top];
})"""
