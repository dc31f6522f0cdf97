"""Chromium plays a transcode made on a worker on another machine, and keeps playing when that
worker dies mid-play (issue 18): a real gunicorn with LVS_REDIS_URL, a real redis-server and
two `flask worker` processes; the worker holding the session is killed with its encoders (kill
-9: a power cut) and the player plays on past what it had buffered, at its position, its
longest stall at most 10 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.compute import conn, leases
from tests.chromium import chromium, watched_tab
from tests.conftest import browser_sign_in
from tests.mediagen import X265, make_video
from tests.redis_server import RedisServer
from tests.sample_library import media_hash, scan_library
from tests.server import Gunicorn
from tests.test_compute import SECRET
from tests.test_playback_browser import wait_js
from tests.test_workers import Workers

pytestmark = pytest.mark.browser

SECONDS = 60
VIDEO = "document.querySelector('video')"


class Cluster(Gunicorn):
    def __init__(self, base: Path) -> None:
        from config import load_settings

        self.root = base / "library"
        self.root.mkdir(parents=True)
        self.data = base / "data"
        self.clip = make_video(self.root / "long.mkv", vcodec=[*X265, "-pix_fmt", "yuv420p"],
                               acodec=["aac", "-b:a", "48k"], seconds=SECONDS,
                               size="320x240")  # fmt: skip
        (base / "redis").mkdir()
        self.redis = RedisServer(base / "redis")
        self.redis.start()
        config = {"media_dirs": [str(self.root)], "data_dir": str(self.data), "probe_workers": 1}
        self.settings = load_settings(config, environ={}, dotenv_path=base / "no.env")
        scan_library(self.settings)
        self.workers = Workers(base, self.redis.url, self.root)
        self.workers.start("w-a")
        self.workers.start("w-b")
        env = {"LVS_MEDIA_DIRS": str(self.root), "LVS_DATA_DIR": str(self.data),
               "LVS_WORKERS": "2", "LVS_THREADS": "8", "LVS_REDIS_URL": self.redis.url,
               "LVS_NODE_SECRET": SECRET, "LVS_LOCAL_WORK": "off"}  # fmt: skip
        self.start(env, self.data / "gunicorn.log")

    def close(self) -> None:
        self.stop()
        self.workers.stop_all()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("workers-browser"))
    yield running
    running.close()


def test_the_player_keeps_playing_when_its_worker_dies(cluster: Cluster) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        browser_sign_in(context, cluster.url, cluster.data)
        with watched_tab(context) as page:
            h = media_hash(cluster.settings, cluster.clip)
            page.goto(f"{cluster.url}/watch/{h}")
            wait_js(page, "window.lvsPlayer && window.lvsPlayer.playback.decision")
            assert page.evaluate("window.lvsPlayer.playback.decision.method") == "transcode"
            page.locator(".big-play").click()
            wait_js(page, f"{VIDEO}.currentTime > 1", 30)
            client = conn.redis_link(cluster.redis.url).client()
            held = {k: leases.holder(client, k.removeprefix(leases.LEASE))
                    for k in client.scan_iter(match=leases.LEASE + "*")}  # fmt: skip
            assert len(held) == 1, held
            first = next(iter(held.values()))
            cluster.workers.kill(first)
            killed_at = page.evaluate(f"{VIDEO}.currentTime")
            buffered = page.evaluate(f"{VIDEO}.buffered.end({VIDEO}.buffered.length - 1)")
            # play on past what was buffered when the worker died: those segments come from
            # the other worker; measure the longest time the position did not move
            target = min(SECONDS - 3, buffered + 6)
            longest, last_t, last_move = 0.0, killed_at, time.monotonic()
            deadline = time.monotonic() + (target - killed_at) + 40
            while True:
                t = page.evaluate(f"{VIDEO}.currentTime")
                now = time.monotonic()
                if t > last_t + 0.01:
                    last_t, last_move = t, now
                longest = max(longest, now - last_move)
                if t >= target:
                    break
                assert now < deadline, (t, target, page.evaluate(f"{VIDEO}.paused"))
                time.sleep(0.1)
            print(
                f"killed {first} at {killed_at:.1f} s (buffered to {buffered:.1f} s); "
                f"played to {target:.1f} s; longest stall {longest:.2f} s"
            )
            assert target > buffered, "nothing was fetched after the kill"
            assert longest <= 10, f"the player stalled {longest:.1f} s"
            assert not page.evaluate(f"{VIDEO}.error")
            other = ({"w-a", "w-b"} - {first}).pop()
            held = {leases.holder(client, k.removeprefix(leases.LEASE))
                    for k in client.scan_iter(match=leases.LEASE + "*")}  # fmt: skip
            assert held == {other}
            log = (cluster.data / "gunicorn.log").read_text()
            assert f"worker {first} lost" in log
