"""Operating the workers on other machines (issue 18): the dashboard's Workers panel, the
Prometheus series and `flask workers`, on a real redis-server with two real `flask worker`
processes and a real transcode session (tests/test_workers.py's cluster).

The panel lists both workers with their sessions, a frozen worker (SIGSTOP: its heartbeat
stops) turns stale and comes back, a stopped Redis shows the notice and a Redis that hangs
(SIGSTOP of redis-server) holds no page; everything recovers when Redis is back. A single
node's dashboard shows nothing of all this.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.compute import status
from tests.conftest import signed_in
from tests.test_workers import Cluster, _stop_sessions, served_by


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(tmp_path_factory.mktemp("workers-ops"))
    yield c
    c.close()


def until(check: Callable[[], object], timeout: float = 15, what: str = "") -> object:
    """Return check()'s first true answer, polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.2)


def rows(html: str) -> dict[str, str]:
    """Return the Workers panel's rows: worker id → state."""
    return dict(re.findall(r'data-worker="([^"]+)" data-state="([^"]+)"', html))


def series(admin, name: str) -> dict[tuple, float]:
    """Return one family of /metrics as {label values: value}."""
    text = admin.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return {tuple(s.labels.values()): s.value for s in family.samples}
    return {}


def workers_json(admin) -> dict:
    return admin.get("/admin/performance.json").get_json()["compute"]


def test_panel_metrics_and_cli_list_both_workers_with_their_sessions(cluster: Cluster) -> None:
    admin = signed_in(cluster.app, "admin", "ops-admin")
    page = admin.get("/admin/performance").get_data(as_text=True)
    assert 'id="workers-panel"' in page and "Redis redis://:***@127.0.0.1" in page
    assert cluster.redis.password not in page
    assert rows(page) == {"w-a": "ok", "w-b": "ok"}
    viewer = cluster.client("viewer-ops")
    h = cluster.hash(0)
    sid = cluster.open(viewer, h)
    r = cluster.segment(viewer, h, sid, 0)
    assert r.status_code == 200
    holder = served_by(cluster.app, sid)

    def placed() -> dict | None:
        found = {w["id"]: w for w in workers_json(admin)["workers"]}
        w = found[holder]
        return found if w["sessions"] == 1 and w["leases"] == 1 else None

    found = until(placed, what="the session in the panel")
    other = ({"w-a", "w-b"} - {holder}).pop()
    assert found[other]["sessions"] == 0 and found[other]["leases"] == 0
    for w in found.values():
        assert w["state"] in ("ok", "busy") and w["heartbeat_age"] < status.STALE_AFTER
        assert w["cpus"] == os.cpu_count() and "libx264" in w["encoders"] and w["host"]
    page = admin.get("/admin/performance", headers={"HX-Request": "true",
                                                    "HX-Target": "performance-live"})  # fmt: skip
    html = page.get_data(as_text=True)
    assert html.startswith('<div id="performance-live"') or 'id="performance-live"' in html[:400]
    assert re.search(rf'data-worker="{holder}".*?<td>1 of \d+</td><td>1</td>', html, re.S)
    assert 'data-queue="lvs-node-w-a"' in html and "sessions for w-a" in html
    # Prometheus: the same numbers
    assert series(admin, "lvs_redis_up") == {(): 1.0}
    assert until(lambda: series(admin, "lvs_compute_worker_sessions").get((holder,)) == 1.0)
    assert series(admin, "lvs_compute_worker_leases")[(other,)] == 0.0
    states = series(admin, "lvs_compute_workers")
    assert states[("ok",)] + states[("busy",)] == 2 and states[("stale",)] == 0
    queues = series(admin, "lvs_compute_queue_messages")
    assert ("lvs-node-w-a", "waiting") in queues and ("lvs-node-w-b", "dead") in queues
    assert set(series(admin, "lvs_compute_worker_heartbeat_age_seconds")) == {("w-a",), ("w-b",)}
    # flask workers: the same as a table and as JSON
    out = cluster.app.test_cli_runner().invoke(args=["workers"])
    assert out.exit_code == 0, out.output
    assert "Redis redis://:***@127.0.0.1" in out.output and cluster.redis.password not in out.output
    lines = out.output.splitlines()
    assert lines[1].split()[:3] == ["HOST", "WORKER", "STATE"]
    mine = next(line for line in lines if f" {holder} " in line).split()
    assert mine[3] == "1/" + mine[3].split("/")[1] and mine[4] == "1"
    assert any(line.startswith("QUEUE") for line in lines)
    out = cluster.app.test_cli_runner().invoke(args=["workers", "--json"])
    doc = json.loads(out.output)
    assert out.exit_code == 0 and doc["redis"] == "ok"
    assert {w["id"] for w in doc["workers"]} == {"w-a", "w-b"}
    _stop_sessions(cluster)


def test_a_frozen_worker_turns_stale_and_comes_back(cluster: Cluster) -> None:
    admin = signed_in(cluster.app, "admin", "ops-admin")
    proc = cluster.workers.procs["w-b"]
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        until(lambda: rows(admin.get("/admin/performance").get_data(as_text=True)).get("w-b")
              == "stale", 10, "w-b stale")  # fmt: skip
        assert rows(admin.get("/admin/performance").get_data(as_text=True))["w-a"] != "stale"
        assert until(lambda: series(admin, "lvs_compute_workers").get(("stale",)) == 1.0)
        # past its announcement's TTL it is still listed, stale, with its last heartbeat's age
        time.sleep(4.5)
        w = next(w for w in workers_json(admin)["workers"] if w["id"] == "w-b")
        assert w["state"] == "stale" and w["heartbeat_age"] > 4
        assert series(admin, "lvs_compute_worker_heartbeat_age_seconds")[("w-b",)] > 4
        out = cluster.app.test_cli_runner().invoke(args=["workers"])
        assert out.exit_code == 0 and re.search(r"w-b\s+stale", out.output), out.output
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    until(lambda: rows(admin.get("/admin/performance").get_data(as_text=True)).get("w-b")
          in ("ok", "busy"), 10, "w-b back")  # fmt: skip


def test_redis_stopped_shows_the_notice_and_recovers(cluster: Cluster) -> None:
    admin = signed_in(cluster.app, "admin", "ops-admin")
    cluster.redis.stop()
    try:

        def notice() -> str | None:
            html = admin.get("/admin/performance").get_data(as_text=True)
            m = re.search(r'<p class="[^"]*" id="compute-notice" role="status">([^<]*)</p>', html)
            return m and m.group(1)

        text = until(notice, 10, "the Redis notice")
        assert "is unreachable" in text and "this server is doing all the work itself" in text
        assert cluster.redis.password not in text
        assert series(admin, "lvs_redis_up") == {(): 0.0}
        assert series(admin, "lvs_compute_workers") == {}
        out = cluster.app.test_cli_runner().invoke(args=["workers"])
        assert out.exit_code == 1 and "is unreachable" in out.output, out.output
        out = cluster.app.test_cli_runner().invoke(args=["workers", "--json"])
        assert out.exit_code == 1 and '"redis": "unreachable"' in out.output
    finally:
        cluster.redis.start()
    until(lambda: rows(admin.get("/admin/performance").get_data(as_text=True)).keys()
          == {"w-a", "w-b"}, 20, "both workers back")  # fmt: skip
    html = admin.get("/admin/performance").get_data(as_text=True)
    assert 'id="compute-notice"' not in html
    assert until(lambda: series(admin, "lvs_redis_up") == {(): 1.0})
    out = cluster.app.test_cli_runner().invoke(args=["workers"])
    assert out.exit_code == 0, out.output


def test_many_tabs_cost_redis_one_snapshot(cluster: Cluster) -> None:
    """Ten dashboards refreshing at once read Redis once (one reader per process), and a
    snapshot serves every caller for status.CACHE_FOR: counted by PTTL, which only the
    snapshot sends (one per worker seen)."""
    from services.compute import conn

    raw = conn.redis_link(cluster.redis.url).raw
    tabs = [signed_in(cluster.app, "admin", "ops-admin") for _ in range(10)]
    time.sleep(status.CACHE_FOR)
    before = raw.info("commandstats").get("cmdstat_pttl", {}).get("calls", 0)
    answers: list[int] = []
    threads = [threading.Thread(target=lambda t=t: answers.append(
        t.get("/admin/performance").status_code)) for t in tabs]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    after = raw.info("commandstats").get("cmdstat_pttl", {}).get("calls", 0)
    assert answers == [200] * 10
    per_snapshot = len(workers_json(tabs[0])["workers"])
    assert after - before <= 2 * per_snapshot, after - before
    # one after the other: a snapshot is reused for CACHE_FOR
    cfg = status.ComputeSettings.of(cluster.settings)
    before = raw.info("commandstats")["cmdstat_pttl"]["calls"]
    started = time.monotonic()
    for _ in range(50):
        status.cached(cfg)
    took = time.monotonic() - started
    after = raw.info("commandstats")["cmdstat_pttl"]["calls"]
    assert after - before <= per_snapshot * (1 + int(took / status.CACHE_FOR)), (
        after - before,
        took,
    )


def test_a_redis_that_hangs_holds_no_page(cluster: Cluster) -> None:
    """redis-server stopped with SIGSTOP: connections are accepted, nothing answers (2 s
    socket timeouts); the dashboard and /metrics answer from the last snapshot meanwhile."""
    admin = signed_in(cluster.app, "admin", "ops-admin")
    until(lambda: workers_json(admin)["redis"] == "ok", 10)
    time.sleep(status.CACHE_FOR)  # the next page must ask Redis
    os.kill(cluster.redis.proc.pid, signal.SIGSTOP)
    try:
        slowest = 0.0
        seen = set()
        for _ in range(8):
            started = time.monotonic()
            html = admin.get("/admin/performance").get_data(as_text=True)
            page = time.monotonic() - started
            started = time.monotonic()
            assert series(admin, "lvs_redis_up") is not None
            slowest = max(slowest, page, time.monotonic() - started)
            seen.add("late" if "slow to answer" in html else
                     "notice" if 'id="compute-notice"' in html else "ok")  # fmt: skip
            time.sleep(0.5)
        # each waits at most status.WAIT for Redis, never a socket timeout (conn.TIMEOUT, 2 s)
        assert slowest < 1.9, slowest
        assert "late" in seen and "notice" in seen, seen
    finally:
        os.kill(cluster.redis.proc.pid, signal.SIGCONT)
    until(lambda: workers_json(admin)["redis"] == "ok"
          and len(workers_json(admin)["workers"]) == 2, 20, "Redis answers again")  # fmt: skip


def test_single_node_dashboard_has_no_workers_panel(admin_client, runner) -> None:
    html = admin_client.get("/admin/performance").get_data(as_text=True)
    assert "workers-panel" not in html and ">Workers</h2>" not in html
    assert 'id="compute-notice"' not in html and "LVS_LOCAL_WORK" not in html
    assert admin_client.get("/admin/performance.json").get_json()["compute"] == {"enabled": False}
    text = admin_client.get("/metrics").get_data(as_text=True)
    assert "lvs_redis_up" not in text and "lvs_compute_" not in text
    out = runner.invoke(args=["workers"])
    assert out.exit_code == 0 and out.output == "single node (LVS_REDIS_URL is empty)\n"
    out = runner.invoke(args=["workers", "--json"])
    assert json.loads(out.output) == {"enabled": False, "redis": "single node"}
