"""Subtitles and the player's menu in Debian's Chromium against a real gunicorn server: the menu
lists the files' tracks, a chosen track's cue is showing at its time (`activeCues`), the choice
carries to the next episode, forced subtitles in the person's language show by themselves, the
menu works from the keyboard, and speed changes the playback rate.

Screenshots go to /tmp/shots/ (subtitles-*.png).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import load_settings
from services import db as dbmod
from services.library.probe_pool import ProbePool
from services.library.scanner import scan
from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.server import Gunicorn
from tests.subtitle_media import SRT_DE, SRT_EN, make_plain_mp4, make_tracks_mkv

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


class Server(Gunicorn):
    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data = root, data
        env = {
            "LVS_MEDIA_DIRS": str(root),
            "LVS_DATA_DIR": str(data),
            "LVS_WORKERS": "1",
            "LVS_THREADS": "8",
        }
        self.start(env, data / "gunicorn.log")

    def hash(self, name: str) -> str:
        db = dbmod.open_db(self.data)
        try:
            return db.execute(
                "SELECT m.media_hash FROM media m JOIN files f ON f.media_id = m.id "
                "WHERE f.name = ?",
                [name],
            ).fetchone()[0]
        finally:
            db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("subsbrowser")
    root, data, work = base / "library", base / "data", base / "work"
    for d in (root / "Show", root / "Film", work):
        d.mkdir(parents=True)
    clip = make_plain_mp4(work / "plain.mp4")
    for n in (1, 2):
        stem = root / "Show" / f"Show.S01E0{n}"
        video = Path(f"{stem}.mp4")
        shutil.copyfile(clip, video)
        with video.open("ab") as f:  # different bytes per episode: a media_hash each
            f.write(bytes([n]) * 16)
        Path(f"{stem}.en.srt").write_text(SRT_EN, "utf-8")
        Path(f"{stem}.de.srt").write_text(SRT_DE, "utf-8")
    make_tracks_mkv(root / "Film" / "Tracks.mkv", work)
    settings = load_settings(
        {"media_dirs": [str(root)], "data_dir": str(data)}, environ={}, dotenv_path=base / "x"
    )
    db = dbmod.open_db(data)
    with ProbePool(1, 30.0) as pool:
        scan(db, settings, probe_pool=pool)
    db.close()
    running = Server(root, data)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    browser_sign_in(context, server.url, server.data, role="viewer")
    with watched_tab(context) as tab:
        yield tab


def wait_js(page, expression: str, timeout: float = 10.0) -> None:
    """Wait until a JavaScript expression is truthy (page.evaluate: the CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def menu_items(page, group: str) -> list[str]:
    return page.evaluate(
        f"""[...document.querySelectorAll('.player-menu [data-choose="{group}"]')]
              .map(b => b.firstChild.textContent)"""
    )


def active_cue_text(page) -> str | None:
    return page.evaluate(
        """(() => { const v = document.querySelector('video');
             for (const t of v.textTracks) if (t.mode === 'showing' && t.activeCues
                 && t.activeCues.length) return t.activeCues[0].getCueAsHTML().textContent;
             return null; })()"""
    )


def seek(page, seconds: float) -> None:
    page.evaluate(f"document.querySelector('video').currentTime = {seconds}")
    wait_js(page, f"Math.abs(document.querySelector('video').currentTime - {seconds}) < 0.05")


def load_video(page) -> None:
    """Load the video's metadata even where the page says it may not play (preload=none)."""
    wait_js(page, "window.lvsPlayerMenu && window.lvsPlayerMenu.root.isConnected")
    page.evaluate(
        "(() => { const v = document.querySelector('video');"
        " if (v.readyState < 1) { v.preload = 'auto'; v.load(); } })()"
    )
    wait_js(page, "document.querySelector('video').readyState >= 1", 15)


def open_menu(page) -> None:
    page.locator("[data-menu-toggle]").click()
    assert page.locator(".player-menu").is_visible()


def test_track_list_matches_the_file(page, server):
    page.goto(f"{server.url}/watch/{server.hash('Tracks.mkv')}")
    wait_js(page, "window.lvsPlayerMenu && document.querySelector('[data-menu-toggle]')")
    open_menu(page)
    assert menu_items(page, "subtitle") == [
        "Off",
        "English",
        "German (forced)",
        "English — PGS signs",
    ]
    assert menu_items(page, "audio") == [
        "English · aac stereo — English stereo",
        "German · ac3 5.1 — Deutsch 5.1",
    ]
    assert menu_items(page, "speed") == ["0.5×", "0.75×", "Normal", "1.25×", "1.5×", "2×"]
    picture = page.locator('.player-menu [data-choose="subtitle"]').nth(3)
    assert "burned in" in picture.inner_text()
    details = page.locator("section.details").inner_text()
    assert "German (forced) · SubRip · in the file" in details and "PGS" in details
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "subtitles-menu.png"), caret="initial")


def test_embedded_cue_shows_at_its_time_and_speed_applies(page, server):
    page.goto(f"{server.url}/watch/{server.hash('Tracks.mkv')}")
    load_video(page)
    open_menu(page)
    page.locator('.player-menu [data-choose="subtitle"]', has_text="English").first.click()
    seek(page, 1.0)
    wait_js(page, "document.querySelector('video').textTracks.length > 0")
    deadline = time.monotonic() + 15
    while active_cue_text(page) != "Hello there & welcome":
        assert time.monotonic() < deadline, active_cue_text(page)
        time.sleep(0.1)
        seek(page, 1.0 + (time.monotonic() % 0.1))  # a fresh seek re-evaluates the cues
    seek(page, 1.9)
    wait_js(
        page,
        "(() => { const t = [...document.querySelector('video').textTracks]"
        ".find(t => t.mode === 'showing'); return t && t.activeCues.length === 0; })()",
    )
    seek(page, 2.5)
    wait_js(
        page,
        "(() => { const t = [...document.querySelector('video').textTracks]"
        ".find(t => t.mode === 'showing'); return t && t.activeCues.length"
        " && t.activeCues[0].getCueAsHTML().textContent.endsWith('Second line'); })()",
    )
    page.locator('.player-menu [data-choose="speed"][data-value="1.5"]').click()
    assert page.evaluate("document.querySelector('video').playbackRate") == 1.5


def test_choice_carries_to_the_next_episode(page, server):
    page.goto(f"{server.url}/watch/{server.hash('Show.S01E01.mp4')}")
    wait_js(page, "document.querySelector('video').readyState >= 1 && window.lvsPlayerMenu")
    assert active_cue_text(page) is None
    open_menu(page)
    assert menu_items(page, "subtitle") == ["Off", "German", "English"]
    with page.expect_response("**/playback/prefs") as saved:
        page.locator('.player-menu [data-choose="subtitle"]', has_text="German").click()
    assert saved.value.json()["subtitle_language"] == "de"
    seek(page, 1.0)
    wait_js(page, "window.lvsPlayerMenu.subtitle !== null")
    page.locator("#next-link").click()  # a boosted navigation: the same document
    wait_js(page, f"location.pathname.endsWith('{server.hash('Show.S01E02.mp4')}')")
    wait_js(
        page,
        "document.querySelector('video').readyState >= 1 && window.lvsPlayerMenu"
        " && window.lvsPlayerMenu.root.isConnected",
    )
    seek(page, 1.0)
    wait_js(
        page,
        "(() => { const t = [...document.querySelector('video').textTracks]"
        ".find(t => t.mode === 'showing'); return t && t.language === 'de'"
        " && t.activeCues.length && t.activeCues[0].getCueAsHTML().textContent === 'Hallo zusammen'; })()",
    )
    # Off is kept too.
    open_menu(page)
    page.locator('.player-menu [data-choose="subtitle"][data-value=""]').click()
    wait_js(
        page, "[...document.querySelector('video').textTracks].every(t => t.mode !== 'showing')"
    )
    page.goto(f"{server.url}/watch/{server.hash('Show.S01E01.mp4')}")
    wait_js(page, "window.lvsPlayerMenu && window.lvsPlayerMenu.root.isConnected")
    time.sleep(0.3)
    assert page.evaluate("window.lvsPlayerMenu.subtitle") is None


def test_forced_subtitles_in_my_language_show_by_themselves(browser, server):
    context = browser.new_context(locale="de-DE", extra_http_headers={"Accept-Language": "de-DE"})
    browser_sign_in(context, server.url, server.data, role="viewer")
    with watched_tab(context) as page:
        page.goto(f"{server.url}/watch/{server.hash('Tracks.mkv')}")
        load_video(page)
        assert page.evaluate("window.lvsPlayerMenu.subtitle") == "e4"
        seek(page, 1.0)
        deadline = time.monotonic() + 15
        while active_cue_text(page) != "Hallo zusammen":
            assert time.monotonic() < deadline
            time.sleep(0.1)
            seek(page, 1.0 + (time.monotonic() % 0.1))


def test_menu_works_from_the_keyboard(page, server):
    page.goto(f"{server.url}/watch/{server.hash('Show.S01E01.mp4')}")
    wait_js(page, "window.lvsPlayerMenu && document.querySelector('[data-menu-toggle]')")
    page.locator("[data-menu-toggle]").focus()
    page.keyboard.press("Enter")
    assert page.locator(".player-menu").is_visible()
    volume = page.evaluate("document.querySelector('video').volume")
    page.keyboard.press("ArrowDown")  # moves in the menu, not the volume
    assert page.evaluate("document.querySelector('video').volume") == volume
    focused = page.evaluate("document.activeElement.dataset.choose")
    assert focused in ("subtitle", "speed")
    page.keyboard.press("Escape")
    assert not page.locator(".player-menu").is_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-toggle')")
    page.keyboard.press("c")  # C: the next subtitle track
    wait_js(page, "window.lvsPlayerMenu.subtitle !== null")


# ---- choices the server makes: another audio track, a picture subtitle burned in ----------

PEAK_JS = """async () => {
  const v = document.querySelector('video');
  if (!window.__lvsAnalyser) {
    const ctx = new AudioContext();
    const node = ctx.createMediaElementSource(v);
    const an = ctx.createAnalyser();
    an.fftSize = 8192;
    node.connect(an); an.connect(ctx.destination);
    await ctx.resume();
    window.__lvsAnalyser = an; window.__lvsRate = ctx.sampleRate;
  }
  const an = window.__lvsAnalyser, data = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(data);
  let best = 0;
  for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
  return data[best] > -90 ? best * window.__lvsRate / an.fftSize : null;
}"""


def loudest(page, timeout: float = 20.0) -> float:
    """Return the loudest frequency (Hz) the playing video sounds now."""
    deadline = time.monotonic() + timeout
    while True:
        peak = page.evaluate(PEAK_JS)
        if peak:
            return peak
        assert time.monotonic() < deadline, "no sound"
        time.sleep(0.2)


def test_switching_audio_plays_the_other_languages_stream(page, server):
    page.goto(f"{server.url}/watch/{server.hash('Tracks.mkv')}")
    wait_js(page, "window.lvsPlayerMenu && window.lvsPlayer && window.lvsPlayer.playback.decision")
    page.evaluate("document.querySelector('video').loop = true")
    page.locator(".big-play").click()
    wait_js(page, "document.querySelector('video').currentTime > 0.3", 20)
    assert abs(loudest(page) - 440) < 20  # English: the 440 Hz tone
    open_menu(page)
    with page.expect_response("**/playback/prefs") as saved:
        page.locator('.player-menu [data-choose="audio"][data-value="2"]').click()
    assert saved.value.json()["audio_language"] == "de"
    wait_js(
        page,
        "(() => { const d = window.lvsPlayer.playback.decision;"
        " return d && d.url.includes('audio=2'); })()",
        20,
    )
    wait_js(
        page,
        "!document.querySelector('video').paused"
        " && document.querySelector('video').currentTime > 0.3",
        30,
    )
    deadline = time.monotonic() + 30
    while abs(loudest(page) - 880) >= 20:  # German: the 880 Hz tone, remuxed/transcoded
        assert time.monotonic() < deadline, loudest(page)
        time.sleep(0.3)
    assert (
        page.locator('.player-menu [data-choose="audio"][data-value="2"]').get_attribute(
            "aria-checked"
        )
        == "true"
    )


MAGENTA_JS = """() => {
  const v = document.querySelector('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const [x, y, w, h] = %s;
  const px = g.getImageData(x + w / 2, y + h / 2, 1, 1).data;
  return [px[0], px[1], px[2]];
}"""


def test_a_picture_subtitle_plays_burned_in(page, server):
    from tests.subtitle_media import PGS_BOX

    page.goto(f"{server.url}/watch/{server.hash('Tracks.mkv')}")
    wait_js(page, "window.lvsPlayerMenu && window.lvsPlayer && window.lvsPlayer.playback.decision")
    open_menu(page)
    page.locator('.player-menu [data-choose="subtitle"][data-value="e5"]').click()
    wait_js(
        page,
        "(() => { const d = window.lvsPlayer.playback.decision;"
        " return d && d.url.includes('burn=5') && d.method === 'transcode'; })()",
        20,
    )
    assert "burn" in page.evaluate("window.lvsPlayer.playback.decision.words").lower() or (
        "subtitles burn-in" in page.evaluate("window.lvsPlayer.playback.decision.reasons")
    )
    page.locator(".big-play").click(force=True)
    wait_js(page, "document.querySelector('video').currentTime > 0.2", 30)
    page.evaluate("document.querySelector('video').pause()")
    seek(page, 1.5)
    wait_js(page, "document.querySelector('video').readyState >= 2", 20)
    r, g, b = page.evaluate(MAGENTA_JS % list(PGS_BOX))
    assert r > 180 and b > 180 and g < 90, (r, g, b)  # the PGS picture, in the frame
    page.screenshot(path=str(SHOTS / "subtitles-burned.png"), caret="initial")
    seek(page, 3.5)
    wait_js(page, "document.querySelector('video').readyState >= 2", 20)
    r, g, b = page.evaluate(MAGENTA_JS % list(PGS_BOX))
    assert not (r > 180 and b > 180 and g < 90), (r, g, b)  # gone after its end
