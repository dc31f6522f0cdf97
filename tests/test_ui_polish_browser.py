"""The household UI's polish (issue 16), in Debian's Chromium against gunicorn: what the first
paint of a page waits for, what a repeat visit asks the server, layout shift as pages and their
next pages load, and the layouts of the watch page's organize panel and the phone's search page.
A Chromium trace of home and a folder over a 100k library
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
  const above = r.top < innerHeight && r.bottom > 0 && r.left < innerWidth;
  return {lazy: img.getAttribute('loading') === 'lazy', above};
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


# ---- the organize panel and the phone's search form ----

ORGANIZE = """() => {
  const panel = document.querySelector('#organize .organize');
  const inner = panel.getBoundingClientRect();
  const parts = Array.from(panel.children).filter((el) => el.offsetParent);
  const rect = (el) => {
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height};
  };
  const heading = (el) => el.matches('section') ? getComputedStyle(el, '::before').content
                         : (el.querySelector(':scope > label') || {}).textContent;
  const pair = (form) => {
    const f = panel.querySelector(form);
    if (!f) return null;
    const a = f.querySelector('input[type=text]').getBoundingClientRect();
    const b = f.querySelector('button[type=submit]').getBoundingClientRect();
    return Math.abs((a.top + a.bottom) / 2 - (b.top + b.bottom) / 2);
  };
  const stars = Array.from(panel.querySelectorAll('.stars .star'))
    .map((s) => Math.round(s.getBoundingClientRect().top));
  return {panel: rect(panel), padding: parseFloat(getComputedStyle(panel).paddingLeft),
          parts: parts.map((el) => ({...rect(el), overflow: el.scrollWidth - el.clientWidth, heading: heading(el)})),
          stars, pairs: ['.tag-add', '.marker-add', '.add-to-playlist'].map(pair)};
}"""


@pytest.mark.parametrize("size", list(SIZES))
def test_the_organize_panel_is_tidy(browser, server, size):
    with open_tab(browser, server, size) as tab:
        tab.goto(server.url + f"/watch/{server.site.hash('long')}")
        got = tab.evaluate(ORGANIZE)
        panel, parts = got["panel"], got["parts"]
        assert len(parts) == 4  # rating, tags, markers, add to playlist
        for part in parts:
            # inside the panel's padding, nothing sticking out of its column
            assert panel["left"] + got["padding"] - 1 <= part["left"]
            assert part["right"] <= panel["right"] - got["padding"] + 1
            assert part["overflow"] <= 1, part
            # each under a heading
            assert part["heading"] and part["heading"] not in ("none", "normal"), part
        # columns line up: panels side by side share their top; each row of them fills the width
        rows: dict[int, list] = {}
        for part in parts:
            rows.setdefault(round(part["top"]), []).append(part)
        tops = sorted(rows)
        assert all(b - a > 40 for a, b in zip(tops, tops[1:], strict=False)), (
            tops
        )  # no ragged near-misses
        width = panel["width"] - 2 * got["padding"]
        for row in rows.values():
            covered = max(p["right"] for p in row) - min(p["left"] for p in row)
            assert covered >= 0.9 * width, (size, covered, width)  # no wide empty band
        assert len(set(got["stars"])) == 1, got["stars"]  # five stars, one row
        # an input and its button sit side by side
        assert all(d is not None and d < 3 for d in got["pairs"]), got["pairs"]


SEARCH_FORM = """() => {
  const form = document.getElementById('search-form');
  const box = (el) => el.getBoundingClientRect();
  const fits = (select) => {
    const c = document.createElement('canvas').getContext('2d');
    const style = getComputedStyle(select);
    c.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = c.measureText(select.selectedOptions[0].textContent).width;
    return text + parseFloat(style.paddingLeft) + 22 <= select.clientWidth;  // 22: the arrow
  };
  return {height: box(form).height,
          bottoms: ['#s-sort', '#s-kind', '#s-filters > summary']
            .map((s) => Math.round(box(form.querySelector(s)).bottom)),
          fit: ['#s-sort', '#s-kind'].map((s) => fits(form.querySelector(s))),
          width: document.documentElement.scrollWidth};
}"""


def test_the_phone_search_form_keeps_sort_show_and_filters_on_one_row(browser, server):
    with open_tab(browser, server, "phone") as tab:
        tab.goto(server.url + "/search?q=show")
        got = tab.evaluate(SEARCH_FORM)
        assert max(got["bottoms"]) - min(got["bottoms"]) <= 2, got
        assert got["fit"] == [True, True], "the chosen sort or kind is cut off"
        assert got["height"] <= 170 and got["width"] <= 390, got
        # filters open beneath, on a row of their own, still inside the screen
        tab.click("#s-filters > summary")
        assert tab.locator("#s-rating").is_visible()
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390


def test_phone_folder_controls_and_dashboard_actions_are_even_rows(browser, server):
    with open_tab(browser, server, "phone") as tab:
        tab.goto(server.url + f"/browse/{server.site.lib}/Movies")
        rows = tab.evaluate(
            """() => ['#f-sort', '#f-order', '#f-view-grid', '#filters > summary']
                 .map((s) => Math.round(document.querySelector(s).closest('label, summary, select')
                                          .getBoundingClientRect().bottom))"""
        )
        assert rows[0] == rows[1] and abs(rows[2] - rows[3]) <= 2, rows  # two rows, not three
        assert (
            tab.evaluate("document.getElementById('controls').getBoundingClientRect().height")
            <= 175
        )
        tab.goto(server.url + "/admin/")
        heights = tab.evaluate(
            """() => Array.from(document.querySelectorAll('.admin-actions > :is(form, .button)'))
                 .map((e) => e.getBoundingClientRect())
                 .map((r) => [Math.round(r.top), Math.round(r.height)])"""
        )
        by_row: dict[int, set] = {}
        for top, height in heights:
            by_row.setdefault(top, set()).add(height)
        assert all(len(h) == 1 for h in by_row.values()), (
            heights
        )  # buttons side by side: one height
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
