"""The admin dashboard in Chromium against a real gunicorn with two workers: it refreshes its
live region without reloading the page, its numbers count both workers' requests, and an admin
action redirects back with a message. Screenshots: /tmp/shots/admin-*.png."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.server import Gunicorn, free_port
from tests.test_browser import SHOTS, wait_js

pytestmark = pytest.mark.browser


class TwoWorkers(Gunicorn):
    """gunicorn (gunicorn.conf.py) with two workers over a small library, scanned first."""

    def __init__(self, base: Path, media: dict[str, Path]) -> None:
        self.root = base / "library"
        self.root.mkdir()
        self.data = base / "data"
        shutil.copy2(media["h264_mp4"], self.root / "clip.mp4")
        shutil.copy2(media["jpeg_exif"], self.root / "photo.jpg")
        shutil.copy2(media["corrupt_mp4"], self.root / "broken.mp4")
        from config import load_settings
        from tests.sample_library import scan_library

        scan_library(
            load_settings(
                {"media_dirs": [str(self.root)], "data_dir": str(self.data), "probe_workers": 1},
                environ={},
                dotenv_path=base / "no.env",
            )
        )
        self.metrics_port = free_port()
        env = {
            "LVS_MEDIA_DIRS": str(self.root),
            "LVS_DATA_DIR": str(self.data),
            "LVS_WORKERS": "2",
            "LVS_THREADS": "4",
            "LVS_PROBE_WORKERS": "1",
            "LVS_METRICS_PORT": str(self.metrics_port),
        }
        self.start(env, base / "gunicorn.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media) -> Iterator[TwoWorkers]:
    running = TwoWorkers(tmp_path_factory.mktemp("admin-browser"), media)
    yield running
    running.stop()


@pytest.fixture
def page(server):
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        browser_sign_in(context, server.url, server.data)
        with watched_tab(context) as tab:
            yield tab


def _count(page) -> int:
    return int(page.locator("#req-count").inner_text())


def test_dashboard_updates_live_and_counts_both_workers(server, page):
    SHOTS.mkdir(exist_ok=True)
    page.goto(server.url + "/admin/performance")
    assert page.locator("h1").inner_text() == "Server performance"
    page.locator("#performance-live svg").first.wait_for()
    page.screenshot(path=str(SHOTS / "admin-dashboard.png"), full_page=True)
    page.evaluate("window.notReloaded = true")
    first = _count(page)
    generated = page.locator(".admin-updated").get_attribute("data-generated")

    # Requests to both workers (new connections spread over them) show up after a poll.
    for _ in range(40):
        with urllib.request.urlopen(server.url + "/health", timeout=5) as r:
            assert r.status == 200
    wait_js(
        page,
        f"document.querySelector('.admin-updated').dataset.generated !== '{generated}'",
        timeout=15,
    )
    wait_js(page, f"Number(document.querySelector('#req-count').textContent) >= {first + 40}", 15)
    assert page.evaluate("window.notReloaded") is True  # swapped in place, no reload
    assert (
        "health.health"
        in page.locator("#performance-live section[aria-labelledby=h-end] table").inner_text()
    )
    assert (
        "broken.mp4" in page.locator("#performance-live").inner_text()
    )  # failed probe, with reason
    page.screenshot(path=str(SHOTS / "admin-dashboard-updated.png"), full_page=True)

    data = page.evaluate("fetch('/admin/performance.json').then(r => r.json())")
    assert data["workers"] == 2  # both workers' numbers are merged
    # Whichever worker answered, the jobs and watcher shown are the background owner's.
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    answered: set[int] = set()
    asks, deadline = 0, time.monotonic() + 30
    # A new connection each: the kernel hands it to whichever worker wakes first, and a busy
    # machine can favour one worker for a while, so ask until both have answered (12 at least).
    while (asks < 12 or len(answered) < 2) and time.monotonic() < deadline:
        request = urllib.request.Request(
            server.url + "/admin/performance.json", headers={"Cookie": cookie}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            data = json.load(r)
        answered.add(data["process"]["pid"])
        assert data["jobs"]["owner"] is True
        assert [w["mode"] for w in data["watcher"]] == ["off"]
        asks += 1
    assert len(answered) == 2
    assert data["requests"]["endpoints"]["health.health"]["count"] >= 40


def test_purge_confirmation_and_action_message(server, page):
    page.goto(server.url + "/admin/performance")
    page.get_by_role("link", name="Purge missing items…").click()
    page.wait_for_url("**/admin/purge")
    assert "Nothing is missing." in page.locator("main").inner_text()
    page.screenshot(path=str(SHOTS / "admin-purge.png"))
    page.goto(server.url + "/admin/performance")
    page.get_by_role("button", name="Start a scan").click()
    page.wait_for_url("**/admin/performance?done=*")
    assert "Scan started" in page.locator(".admin-message").inner_text()
    page.screenshot(path=str(SHOTS / "admin-action.png"))


def test_metrics_port_serves_without_sign_in_and_main_port_needs_admin(server):
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(5):
        urllib.request.urlopen(server.url + "/livez", timeout=5).close()
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"

    def scrape() -> tuple[dict, list]:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = families["lvs_requests"].samples
        return families, [s for s in samples if s.labels["endpoint"] == "health.livez"]

    # Each worker writes its numbers within a second of a change; a loaded machine may take
    # longer, so wait for them rather than for a fixed time.
    deadline = time.monotonic() + 15
    families, livez = scrape()
    while not (livez and livez[0].value >= 5):
        assert time.monotonic() < deadline, f"/metrics never counted the 5 requests: {livez}"
        time.sleep(0.2)
        families, livez = scrape()
    (workers,) = families["lvs_workers"].samples
    assert workers.value >= 1  # each worker that has answered (both: see the dashboard test)
    request = urllib.request.Request(server.url + "/metrics")
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("/metrics on the main port answered without sign-in")
    except urllib.error.HTTPError as exc:
        assert exc.code in (401, 403)
    except AssertionError:
        raise


def test_active_streams_under_gunicorn_sendfile(server, page):
    """A file sent by sendfile counts as a stream while it is open and stops when done."""
    import sqlite3

    page.goto(server.url + "/admin/performance")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    conn = sqlite3.connect(f"file:{server.data / 'library.db'}?mode=ro", uri=True)
    (media_hash,) = conn.execute("SELECT media_hash FROM media WHERE kind = 'video'").fetchone()
    conn.close()

    def numbers() -> tuple[int, int]:
        request = urllib.request.Request(
            server.url + "/admin/performance.json", headers={"Cookie": cookie}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            data = json.load(r)
        return data["active_streams"], data["streams_total"]

    _, started = numbers()

    request = urllib.request.Request(
        server.url + f"/media/{media_hash}/file", headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
    assert len(body) > 1000
    deadline = time.monotonic() + 10
    while numbers() != (0, started + 1):  # its worker writes its numbers within a second
        assert time.monotonic() < deadline, "the finished stream is still counted"
        time.sleep(0.3)
