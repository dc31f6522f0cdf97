"""Organizing in a real browser against gunicorn: select videos and tag them in bulk, copy and
paste tags, rate and favourite on the watch page, add a marker and jump to it, build a playlist
from a selection and play it through, and find a video by typing part of its tag."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.sample_library import Site
from tests.test_browser import DESKTOP, SHOTS, Server, wait_js

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator[Server]:
    running = Server(Site(tmp_path_factory.mktemp("organize-browser"), media))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=DESKTOP)
    browser_sign_in(context, server.url, server.site.data)
    with watched_tab(context) as tab:
        yield tab


def card(page, title: str):
    return page.locator("ul.cards > li.card", has_text=re.compile(re.escape(title)))


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"organize-{name}.png"), caret="initial")


def tag_names(page) -> list[str]:
    return [t.strip() for t in page.locator("#tags .tag-list .tag > a").all_inner_texts()]


def test_select_and_tag_in_bulk(page, server):
    page.goto(f"{server.url}/browse/{server.site.lib}/Movies")
    page.locator("[data-select-toggle]").click()
    card(page, "Show S01E01").click()
    card(page, "Show S01E03").click(modifiers=["Shift"])  # the range: E01, E02, E03
    assert page.locator("li.card.selected").count() == 3
    assert page.url.endswith("/Movies")  # clicks selected, did not navigate
    page.locator("[data-bulk-tag]").fill("Cartoon, weekend")
    page.locator('[data-bulk="add"]').click()
    page.wait_for_selector(".sel-status:has-text('Tagged 3 items')")
    shot(page, "bulk-tagged")
    page.goto(f"{server.url}/tag/cartoon")
    assert page.locator("ul.cards > li.card").count() == 3
    # Select all, then remove a tag from everything
    page.goto(f"{server.url}/browse/{server.site.lib}/Movies")
    page.locator("[data-select-toggle]").click()
    page.locator("[data-select-all]").click()
    assert (
        page.locator("li.card.selected").count()
        == page.locator("ul.cards > li.card:not(.folder)").count()
    )
    page.locator("[data-bulk-tag]").fill("weekend")
    page.locator('[data-bulk="remove"]').click()
    page.wait_for_selector(".sel-status:has-text('Untagged')")
    assert page.goto(f"{server.url}/tag/weekend").status == 404


def test_copy_and_paste_tags(page, server):
    src, dst = server.site.hash("hevc"), server.site.hash("vp9")
    page.goto(f"{server.url}/watch/{src}")
    page.locator("#tags input[name=tag]").fill("Nature, Slow")
    page.locator("#tags .tag-add button").click()
    wait_js(page, "document.querySelectorAll('#tags .tag-list .tag').length === 2")
    page.locator("[data-tags-copy]").click()
    page.goto(f"{server.url}/watch/{dst}")
    page.locator("[data-tags-paste]").click()
    wait_js(page, "document.querySelectorAll('#tags .tag-list .tag').length === 2")
    assert tag_names(page) == ["Nature", "Slow"]
    page.reload()
    assert tag_names(page) == ["Nature", "Slow"]


def test_a_refused_change_says_why(page, server):
    """A 400 to an htmx request shows its reason in the toast; nothing changes silently."""
    page.goto(f"{server.url}/watch/{server.site.hash('bonus')}")
    before = tag_names(page)
    page.locator("#tags input[name=tag]").fill("x" * 80)
    page.locator("#tags .tag-add button").click()
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert "longer than 64 characters" in toast.inner_text()
    shot(page, "refused-tag")
    assert tag_names(page) == before
    toast.click()
    toast.wait_for(state="hidden")


def test_rate_favourite_and_marker_on_the_watch_page(page, server):
    h = server.site.hash("long")
    page.goto(f"{server.url}/watch/{h}")
    page.get_by_role("button", name="Rate 4 stars").click()
    page.wait_for_selector("#rating .star.on >> nth=3")
    assert page.locator("#rating .star.on").count() == 4
    assert "Average 4.0 from 1 rating" in page.locator("[data-average]").inner_text()
    page.get_by_role("button", name="Add to favourites").click()
    page.wait_for_selector("#rating .fav .on")
    page.reload()
    assert page.locator("#rating .star.on").count() == 4
    assert page.locator("#rating .fav .on").count() == 1
    # a marker at the current time, then jump back to it
    page.locator(".big-play").click()
    wait_js(page, "document.querySelector('video').currentTime > 1", 15)
    page.evaluate("document.querySelector('video').pause()")
    page.evaluate("document.querySelector('video').currentTime = 42")
    wait_js(page, "Math.abs(document.querySelector('video').currentTime - 42) < 0.5")
    page.locator("#markers input[name=label]").fill("Good bit")
    page.locator("#markers .marker-add button").click()
    page.wait_for_selector("#markers [data-seek]")
    assert page.locator("#markers [data-seek]").inner_text() == "0:42"
    shot(page, "watch")
    page.evaluate("document.querySelector('video').currentTime = 5")
    page.locator("#markers [data-seek]").click()
    wait_js(page, "document.querySelector('video').currentTime >= 41.5")


def test_build_a_playlist_and_play_it_through(page, server):
    page.on("dialog", lambda d: d.accept("Road movies"))
    page.goto(f"{server.url}/browse/{server.site.lib}/Movies")
    page.locator("[data-select-toggle]").click()
    card(page, "Show S01E02").click()
    card(page, "Show S01E03").click()
    page.locator("[data-bulk-playlist]").select_option("new")
    page.wait_for_selector(".sel-status:has-text('Made playlist Road movies')")
    page.goto(f"{server.url}/playlists")
    page.get_by_role("link", name="Road movies").click()
    page.wait_for_selector(".playlist-items li >> nth=1")
    page.locator("#play-all").click()
    ep2, ep3 = server.site.hash("ep2"), server.site.hash("ep3")
    page.wait_for_url(re.compile(f"/watch/{ep2}\\?"))
    assert "1 of 2" in page.locator("#queue").inner_text()
    page.locator(".big-play").click()
    page.wait_for_url(re.compile(f"/watch/{ep3}\\?.*pos=1"), timeout=20_000)
    wait_js(page, "document.querySelector('video')?.currentTime > 0.2", 15)
    assert "2 of 2" in page.locator("#queue").inner_text()


def test_find_a_video_by_typing_part_of_its_tag(page, server):
    h = server.site.hash("avi")
    page.goto(f"{server.url}/watch/{h}")
    page.locator("#tags input[name=tag]").fill("Wildebeest")
    page.locator("#tags .tag-add button").click()
    wait_js(page, "document.querySelectorAll('#tags .tag-list .tag').length === 1")
    page.goto(f"{server.url}/search")
    page.locator("#q").press_sequentially("wilde", delay=60)
    page.wait_for_selector(f'#results a[href="/watch/{h}"]')
    assert page.locator("#results li.card").count() == 1
    shot(page, "search")
    assert "q=wilde" in page.url  # live results keep the URL shareable
