"""Metrics: rolling percentiles, worker merging, the dashboard JSON moving with traffic, /metrics."""

from __future__ import annotations

import json
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services import metrics
from services.metrics import Metrics


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def admin_headers(app):
    """Return headers that sign in as the default admin with an API token."""
    from services import db as dbmod
    from services.people import apitokens

    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    token = apitokens.create(db, 1, "metrics test")
    db.close()
    return {"Authorization": f"Bearer {token}"}


def test_percentiles_are_within_ten_percent():
    m = Metrics(clock=Clock())
    for i in range(1, 1001):
        m.observe("x", i / 1000)  # 1 ms .. 1 s, uniform
    s = m.snapshot().get("x")
    assert s.count == 1000 and s.total == 1000
    assert s.p50 == pytest.approx(0.5, rel=0.1)
    assert s.p95 == pytest.approx(0.95, rel=0.1)
    assert s.p99 == pytest.approx(0.99, rel=0.1)
    assert s.avg == pytest.approx(0.5005)
    assert s.max == 1.0


def test_old_slices_leave_the_window_but_totals_stay():
    clock = Clock()
    m = Metrics(clock=clock)
    for _ in range(10):
        m.observe("x", 2.0)
    clock.t += metrics.SLICE * metrics.SLICES + 1
    m.observe("x", 0.001)
    s = m.snapshot().get("x")
    assert s.count == 1 and s.total == 11
    assert s.p99 == pytest.approx(0.001, rel=0.1)


def test_workers_files_are_merged_and_dead_ones_dropped(tmp_path):
    clock = Clock()
    mine = Metrics(clock=clock)
    mine.configure(tmp_path)
    mine.observe("request:a", 0.010)
    mine.count("cache_hit", 3)
    other = mine.state()
    other["pid"] = os.getppid()  # alive: the test runner's parent
    other["series"]["request:a"] = {
        k: [5, 5.0, 1.0, {str(metrics.bucket_of(1.0)): 5}] for k in other["series"]["request:a"]
    }
    other["totals"] = {"request:a": 5}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / f"{os.getppid()}.json").write_text(json.dumps(other))
    dead = dict(other, pid=999_999_999)
    (tmp_path / "metrics" / "999999999.json").write_text(json.dumps(dead))
    snap = mine.merged()
    a = snap.get("request:a")
    assert snap.workers == 2
    assert a.count == 6 and a.total == 6
    assert a.p50 == pytest.approx(1.0, rel=0.1)  # five of six took a second
    assert snap.counters["cache_hit"] == 6
    assert not (tmp_path / "metrics" / "999999999.json").exists()


def test_dashboard_json_numbers_move_with_requests(app, admin_headers):
    client = app.test_client()
    before = client.get("/admin/performance.json", headers=admin_headers).get_json()
    seen = before["requests"]["endpoints"].get("health.livez", {"count": 0, "total": 0})
    for _ in range(20):
        assert client.get("/livez").status_code == 200
    after = client.get("/admin/performance.json", headers=admin_headers).get_json()
    livez = after["requests"]["endpoints"]["health.livez"]
    # At least ours: the counters are process-wide, and a server thread another test left
    # running in this process may answer a readiness probe meanwhile (seen once: 23 for 20).
    assert livez["count"] >= seen["count"] + 20
    assert livez["total"] >= seen["total"] + 20
    assert 0 < livez["p50_ms"] <= livez["p95_ms"] <= livez["p99_ms"] <= livez["max_ms"]
    assert after["requests"]["count"] >= before["requests"]["count"] + 21
    # The JSON request itself ran SQL (users, tokens, library totals): queries are counted.
    assert after["db_queries_per_request"]["max"] >= 1
    assert after["db_queries_per_request"]["avg"] > 0
    assert after["process"]["rss_bytes"] > 10_000_000
    assert after["uptime_seconds"] >= 0
    assert after["library"]["totals"]["items"] == 0
    assert "database" in after["disk"]


def test_slow_requests_raise_the_percentiles(app, admin_headers):
    """A slow endpoint's p99 goes up once slow requests are driven; the fast one's does not."""
    import time

    from flask import Blueprint

    bp = Blueprint("slowtest", __name__)

    @bp.get("/slow-for-test")
    def slow() -> str:
        time.sleep(0.05)
        return "ok"

    app.register_blueprint(bp)
    client = app.test_client()
    for _ in range(5):
        assert client.get("/slow-for-test", headers=admin_headers).status_code == 200
        # The fast endpoint, driven here: a request is counted once it is answered, so relying
        # on earlier tests' requests made this test fail when run alone.
        assert client.get("/livez").status_code == 200
    data = client.get("/admin/performance.json", headers=admin_headers).get_json()
    slow_ep = data["requests"]["endpoints"]["slowtest.slow"]
    assert slow_ep["count"] == 5
    assert slow_ep["p50_ms"] >= 45
    assert data["requests"]["endpoints"]["health.livez"]["p50_ms"] < slow_ep["p50_ms"]


def test_ratings_and_cache_numbers_show_in_the_json(app, admin_headers):
    metrics.observe("ratings_post", 0.004)
    metrics.count("cache_hit", 3)
    metrics.count("cache_miss", 1)
    data = app.test_client().get("/admin/performance.json", headers=admin_headers).get_json()
    assert data["ratings_post"]["count"] >= 1
    assert data["ratings_post"]["p95_ms"] > 0
    assert data["cache"]["hits"] >= 3 and data["cache"]["misses"] >= 1
    assert 0 < data["cache"]["hit_rate"] < 1


def test_prometheus_text_parses_and_counts_requests(app, admin_headers):
    client = app.test_client()
    for _ in range(3):
        client.get("/health")
    response = client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    for name in (
        "lvs_uptime_seconds",
        "lvs_requests",
        "lvs_request_latency_seconds",
        "lvs_library_items",
        "lvs_ffmpeg_failures",
        "lvs_estale_retries",
        "lvs_scans",
        "flask_http_request_duration_seconds",
    ):
        assert name in families, name
    health = [
        s for s in families["lvs_requests"].samples if s.labels.get("endpoint") == "health.health"
    ]
    assert health and health[0].value >= 3


def test_metrics_need_an_admin(app):
    response = app.test_client().get("/metrics")
    assert response.status_code in (302, 303, 401, 403)
    assert b"lvs_uptime_seconds" not in response.data


def test_every_response_carries_a_request_id(app):
    client = app.test_client()
    a = client.get("/health").headers["X-Request-ID"]
    b = client.get("/health").headers["X-Request-ID"]
    assert a and b and a != b
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    bad = client.get("/health", headers={"X-Request-ID": "x y;<z>"}).headers["X-Request-ID"]
    assert bad != "x y;<z>" and " " not in bad


def test_log_lines_carry_the_request_id_and_errors_are_kept(app, admin_headers):
    import logging

    from flask import Blueprint

    from services.operate import logs

    bp = Blueprint("logtest", __name__)

    @bp.get("/log-for-test")
    def noisy() -> str:
        logging.getLogger("tests.noisy").error("something broke for %s", "this request")
        return "ok"

    app.register_blueprint(bp)
    response = app.test_client().get(
        "/log-for-test", headers={**admin_headers, "X-Request-ID": "req-42"}
    )
    assert response.status_code == 200
    kept = logs.RECENT_ERRORS.recent()[0]
    assert kept.request_id == "req-42" and kept.message == "something broke for this request"
    data = app.test_client().get("/admin/performance.json", headers=admin_headers).get_json()
    assert data["recent_errors"][0]["request_id"] == "req-42"

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.request_id = "abc"
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["request_id"] == "abc" and line["message"] == "hello you"
    assert line["level"] == "WARNING" and line["time"].endswith("Z")
    text = logging.Formatter(logs.TEXT_FORMAT).format(record)
    assert "[abc]" in text
