"""The dashboard's Workers panel in Chromium (issue 18): a real gunicorn with LVS_REDIS_URL, a
real redis-server and two `flask worker` processes (tests/test_workers_browser.py's cluster).
The panel lists both workers; its 3-second refresh, without a reload, turns a frozen worker
stale and back, and shows the Redis notice while Redis is stopped and drops it when Redis is
back. The page is photographed (the test's folder; scripts/screenshots --workers for docs/)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.test_workers_browser import Cluster

pytestmark = pytest.mark.browser

ROW = "#workers tr[data-worker='{}']"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("workers-ops-browser"))
    yield running
    running.close()


def state(page, worker: str) -> str | None:
    row = page.locator(ROW.format(worker))
    return row.get_attribute("data-state") if row.count() else None


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.25)


def test_the_workers_panel_follows_workers_and_redis_without_a_reload(cluster, tmp_path) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        browser_sign_in(context, cluster.url, cluster.data)
        with watched_tab(context) as page:
            page.goto(f"{cluster.url}/admin/performance")
            assert page.locator("#h-workers").inner_text() == "Workers"
            wait(lambda: state(page, "w-a") == "ok" and state(page, "w-b") == "ok", 10, "both ok")
            assert "sessions for w-a" in page.locator("#queues").inner_text()
            page.evaluate("window.lvsMarker = 1")  # gone if the page reloads
            page.locator("#workers-panel").scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "dashboard-workers.png"), full_page=True)
            proc = cluster.workers.procs["w-b"]
            os.killpg(proc.pid, signal.SIGSTOP)
            try:
                wait(lambda: state(page, "w-b") == "stale", 12, "w-b stale")
                assert state(page, "w-a") == "ok"
                page.screenshot(path=str(tmp_path / "dashboard-workers-stale.png"))
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            wait(lambda: state(page, "w-b") == "ok", 12, "w-b back")
            cluster.redis.stop()
            try:
                notice = page.locator("#compute-notice")
                wait(lambda: notice.count() == 1, 15, "the Redis notice")
                text = notice.inner_text()
                assert "unreachable" in text and "doing all the work itself" in text
                assert cluster.redis.password not in text
                assert page.locator("#redis-state").inner_text() == "not answering"
                page.screenshot(path=str(tmp_path / "dashboard-redis-down.png"))
            finally:
                cluster.redis.start()
            wait(lambda: notice.count() == 0 and state(page, "w-a") == "ok"
                 and state(page, "w-b") == "ok", 25, "Redis and both workers back")  # fmt: skip
            assert page.evaluate("window.lvsMarker") == 1  # all of it without a reload
