"""Request timing, request ids, and Prometheus `/metrics`.

`install(app)` adds the hooks every request goes through: a request id (kept from a sane
`X-Request-ID`, else made; logged on every line and sent back), its latency recorded per
endpoint, and the SQL statements it ran (the trace hook blueprints.common.get_db sets).

`/metrics` belongs to the blueprint "admin_metrics": like every admin* blueprint it needs the
admin role, so a Prometheus scraper sends an admin's API token (`Authorization: Bearer …`).
The `lvs_*` series are computed at scrape time from every worker's merged numbers and from the
database, so they are whole whichever worker answers; prometheus-flask-exporter's own
`flask_http_*` series describe the answering worker only, and leave out the media file route
(answered in front of Flask, blueprints/media_direct.py; `lvs_requests` counts it).

With LVS_REDIS_URL set, `lvs_redis_up`, `lvs_compute_workers{state}`, the `lvs_compute_worker_*
{worker}` series and `lvs_compute_queue_messages{queue,state}` describe the workers on other
machines (services/compute/status.py's cached snapshot). Their labels stay few: a worker id
per worker (a household has a handful; one that went quiet is forgotten after
registry.FORGET, 10 minutes) and a queue per worker plus the batch queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_flask_exporter import PrometheusMetrics

from blueprints.common import get_db
from services import metrics
from services.compute import status as compute_status
from services.compute.settings import ComputeSettings
from services.errors import LVSError
from services.library import library
from services.operate import logs, wal
from services.playback import transcoder

bp = Blueprint("admin_metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LIBRARY_CACHE = 15.0  # seconds a library count is reused between scrapes
STREAMING = frozenset({"media.file"})  # endpoints whose answers are played for minutes


class LvsCollector:
    """Our own series, read at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._library: tuple[float, list[Metric]] = (0.0, [])

    def collect(self) -> Iterator[Metric]:
        snap = metrics.snapshot()
        up = GaugeMetricFamily("lvs_uptime_seconds", "Seconds since the oldest worker started")
        up.add_metric([], time.time() - snap.started)
        yield up
        workers = GaugeMetricFamily("lvs_workers", "Server processes reporting metrics")
        workers.add_metric([], snap.workers)
        yield workers
        reqs = CounterMetricFamily(
            "lvs_requests", "Requests since start, per endpoint", labels=["endpoint"]
        )
        lat = GaugeMetricFamily(
            "lvs_request_latency_seconds",
            "Request latency over the rolling window",
            labels=["endpoint", "quantile"],
        )
        for s in snap.endpoints():
            name = s.name.removeprefix("request:")
            reqs.add_metric([name], s.total)
            for q, v in (("0.5", s.p50), ("0.95", s.p95), ("0.99", s.p99)):
                lat.add_metric([name, q], v)
        yield reqs
        yield lat
        cache = CounterMetricFamily("lvs_cache_lookups", "Cache lookups", labels=["result"])
        cache.add_metric(["hit"], snap.counters.get("cache_hit", 0))
        cache.add_metric(["miss"], snap.counters.get("cache_miss", 0))
        yield cache
        streams = GaugeMetricFamily("lvs_active_streams", "Media files being sent now")
        streams.add_metric([], snap.active_streams())
        yield streams
        yield from self._playback(snap)
        estale = CounterMetricFamily("lvs_estale_retries", "Filesystem calls retried after ESTALE")
        estale.add_metric([], snap.counters.get("estale_retries", 0))
        yield estale
        yield from self._jobs()
        yield from self._compute()
        yield from self._wal()
        yield from self._library_metrics()

    def _playback(self, snap: metrics.Snapshot) -> Iterator[Metric]:
        root = self.app.config["SETTINGS"].data_dir / "hls"
        sessions = transcoder.list_sessions(root) if root.is_dir() else []
        active = GaugeMetricFamily(
            "lvs_playback_sessions", "HLS playback sessions now, by method", labels=["method"]
        )
        for method in ("remux", "transcode"):
            active.add_metric([method], sum(1 for s in sessions if s.method == method))
        yield active
        running = GaugeMetricFamily("lvs_transcoders_running", "ffmpeg encoders running now")
        running.add_metric([], sum(1 for s in sessions if s.encoder))
        yield running
        started = CounterMetricFamily(
            "lvs_playback_sessions_started", "HLS sessions started, by method", labels=["method"]
        )
        for method in ("remux", "transcode"):
            started.add_metric([method], snap.counters.get(f"hls_sessions_{method}", 0))
        yield started
        for name, doc, key in (
            ("lvs_transcoder_starts", "Encoders started", "hls_encoder_starts"),
            ("lvs_transcoder_restarts", "Encoders restarted by a seek", "hls_encoder_restarts"),
            (
                "lvs_playback_sessions_reaped",
                "Sessions ended for being idle",
                "hls_sessions_reaped",
            ),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], snap.counters.get(key, 0))
            yield c
        size, _ = transcoder.cache_usage(root) if root.is_dir() else (0, 0)
        cache = GaugeMetricFamily("lvs_transcode_cache_bytes", "Size of the transcode cache")
        cache.add_metric([], size)
        yield cache

    def _compute(self) -> Iterator[Metric]:
        cfg = ComputeSettings.of(self.app.config["SETTINGS"])
        if not cfg.enabled:
            return
        snap = compute_status.cached(cfg)
        up = GaugeMetricFamily("lvs_redis_up", "1 while Redis (the workers' queue) answers")
        up.add_metric([], 1 if snap.redis == "ok" else 0)
        yield up
        if snap.redis != "ok":
            return
        rows = snap.rows()
        states = GaugeMetricFamily(
            "lvs_compute_workers", "Workers on other machines, by state", labels=["state"]
        )
        for state in ("ok", "busy", "stale"):
            states.add_metric([state], sum(1 for r in rows if r.state == state))
        yield states
        for name, doc, value in (
            ("sessions", "Transcode sessions a worker runs (its heartbeat)", "sessions"),
            ("capacity", "Encoders a worker runs at once", "capacity"),
            ("leases", "Sessions the server placed on a worker (live leases)", "leases"),
            ("load", "A worker's 1-minute load average per CPU", "load"),
            ("cpus", "A worker's CPUs", "cpus"),
            ("heartbeat_age_seconds", "Seconds since a worker's last heartbeat", "heartbeat_age"),
        ):
            family = GaugeMetricFamily(f"lvs_compute_worker_{name}", doc, labels=["worker"])
            for row in rows:
                family.add_metric([row.info.id], row.as_dict()[value])
            yield family
        queues = GaugeMetricFamily(
            "lvs_compute_queue_messages",
            "Messages in the workers' queues, by state",
            labels=["queue", "state"],
        )
        for queue, size in snap.queues.items():
            for state in ("waiting", "delayed", "running", "dead"):
                queues.add_metric([queue, state], getattr(size, state))
        yield queues

    def _wal(self) -> Iterator[Metric]:
        st = wal.status(self.app.config["SETTINGS"].db_path)
        for name, doc, value in (
            ("lvs_wal_bytes", "Size of the database's write-ahead log file", st["wal_bytes"]),
            (
                "lvs_wal_last_checkpoint_timestamp_seconds",
                "When the write-ahead log was last emptied (Unix time; 0: not yet)",
                st["last_checkpoint_at"] or 0,
            ),
            (
                "lvs_wal_pinned_seconds",
                "How long a reader has kept the write-ahead log from being emptied (0: it has not)",
                time.time() - st["pinned_since"] if st["pinned_since"] else 0,
            ),
        ):
            g_ = GaugeMetricFamily(name, doc)
            g_.add_metric([], value)
            yield g_

    def _jobs(self) -> Iterator[Metric]:
        jobs = getattr(self.app.extensions.get("background"), "jobs", None)
        if jobs is None:
            return
        st = jobs.status()
        depth = GaugeMetricFamily("lvs_queue_depth", "Jobs waiting, per kind", labels=["kind"])
        for kind in ("scan", "thumbnail", "sprite", "clip"):
            depth.add_metric([kind], st.queued.get(kind, 0))
        yield depth
        running = GaugeMetricFamily("lvs_jobs_running", "Jobs running, per kind", labels=["kind"])
        for kind in ("scan", "probe", "thumbnail", "sprite", "clip"):
            running.add_metric([kind], sum(1 for j in st.running if j.kind == kind))
        yield running

    def _library_metrics(self) -> Iterator[Metric]:
        at, cached = self._library
        if cached and time.monotonic() - at < LIBRARY_CACHE:
            yield from cached
            return
        found: list[Metric] = []
        try:
            with self.app.app_context():
                db = get_db()
                s = library.stats(db)
                scan = db.execute(
                    "SELECT finished_at - started_at FROM scans WHERE finished_at IS NOT NULL "
                    "ORDER BY id DESC LIMIT 1"
                ).fetchone()
                scans = db.execute(
                    "SELECT count(*), coalesce(sum(finished_at - started_at), 0) FROM scans "
                    "WHERE finished_at IS NOT NULL"
                ).fetchone()
                previews = db.execute(
                    "SELECT kind, status, count(*), coalesce(sum(seconds), 0) FROM thumbs "
                    "GROUP BY kind, status"
                ).fetchall()
        except (LVSError, Exception):  # a scrape must answer even when the database is busy
            return
        size = GaugeMetricFamily("lvs_library_items", "Media items", labels=["kind"])
        size.add_metric(["video"], s.videos)
        size.add_metric(["picture"], s.pictures)
        found.append(size)
        for name, doc, value in (
            ("lvs_library_bytes", "Bytes of media", s.total_size),
            ("lvs_library_duration_seconds", "Seconds of video", s.total_duration),
            ("lvs_library_missing_files", "Files gone from disk", s.missing),
            ("lvs_library_failed_files", "Files that failed their probe", s.failed),
            ("lvs_last_scan_duration_seconds", "Duration of the last scan", scan[0] if scan else 0),
        ):
            g_ = GaugeMetricFamily(name, doc)
            g_.add_metric([], value or 0)
            found.append(g_)
        scan_sum = CounterMetricFamily("lvs_scan_seconds", "Seconds spent in finished scans")
        scan_sum.add_metric([], scans[1])
        found.append(scan_sum)
        scan_n = CounterMetricFamily("lvs_scans", "Finished scans")
        scan_n.add_metric([], scans[0])
        found.append(scan_n)
        made = CounterMetricFamily(
            "lvs_previews", "Thumbnails, sprites and clips recorded", labels=["kind", "status"]
        )
        secs = CounterMetricFamily(
            "lvs_preview_seconds", "Seconds spent making previews", labels=["kind"]
        )
        failures = CounterMetricFamily(
            "lvs_ffmpeg_failures", "Decoder failures (previews and probes)", labels=["what"]
        )
        seconds: dict[str, float] = {}
        failed: dict[str, int] = {}
        for kind, status, n, total in previews:
            made.add_metric([kind, status], n)
            seconds[kind] = seconds.get(kind, 0.0) + total
            if status == "failed":
                failed[kind] = failed.get(kind, 0) + n
        for kind, total in seconds.items():
            secs.add_metric([kind], total)
        for kind in ("thumbnail", "sprite", "clip"):
            failures.add_metric([kind], failed.get(kind, 0))
        failures.add_metric(["probe"], s.failed)
        found += [made, secs, failures]
        self._library = (time.monotonic(), found)
        yield from found


@bp.get("/metrics")
def prometheus() -> Response:
    registry: CollectorRegistry = current_app.extensions["lvs_prometheus"]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


def serve_separately(app: Flask) -> bool:
    """Serve `/metrics` without sign-in on LVS_METRICS_PORT, when set; return whether it runs.

    One process does it (the background owner, see gunicorn.conf.py); its `lvs_*` series are
    the merged numbers of every worker anyway.
    """
    from prometheus_client import start_http_server

    settings = app.config["SETTINGS"]
    if not settings.metrics_port:
        return False
    start_http_server(
        settings.metrics_port, settings.host, registry=app.extensions["lvs_prometheus"]
    )
    logging.getLogger(__name__).info(
        "Prometheus metrics on port %d (no sign-in)", settings.metrics_port
    )
    return True


def _stream_ended() -> None:
    metrics.count("streams_ended")


def _when_closed(body: Any, callback: Callable[[], None]) -> bool:
    """Call `callback` once when the server closes a passed-through body (a file for sendfile,
    maybe inside the server's wsgi.file_wrapper); return whether it could be hooked.

    Wrapping the body would cost sendfile(): the file's own close() is hooked instead, which
    the file wrapper calls when it is done.
    """
    target = getattr(body, "filelike", body)
    close = getattr(target, "close", None)
    if close is None:
        return False
    done = []

    def closing() -> None:
        try:
            close()
        finally:
            if not done:
                done.append(True)
                callback()

    try:
        target.close = closing
        if body is not target:
            body.close = closing  # gunicorn's FileWrapper copied the file's close at creation
    except AttributeError:  # a body with __slots__ or a C type
        return False
    return True


def record(endpoint: str | None, status: int, started: float, body: Any = None) -> None:
    """Record a request's latency (since `started`, a perf_counter), its SQL statements, a
    server error, and for a stream (`body`: the passed-through file it sends) its start and,
    once the server has sent it, its end."""
    counter = "errors" if status >= 500 else ""
    if body is not None and endpoint in STREAMING and status in (200, 206):
        # Open until the last byte is sent: started - ended, summed over workers.
        target = getattr(body, "filelike", body)
        if hasattr(target, "on_close") and target.on_close is None:  # media.Bounded: no wrapping
            target.on_close = _stream_ended
            counter = "streams_started"
        elif _when_closed(body, _stream_ended):
            counter = "streams_started"
    metrics.REGISTRY.observe_many(
        (
            (f"request:{endpoint or 'not_found'}", time.perf_counter() - started),
            ("db_queries", metrics.take_queries()),
        ),
        counter,
    )
    metrics.REGISTRY.dump()


def install(app: Flask) -> None:
    """Add request ids, timing and query counting, and `/metrics`."""
    registry = CollectorRegistry()  # no auto_describe: registering must not read the database
    PrometheusMetrics(app, path=None, registry=registry, group_by="endpoint")
    registry.register(LvsCollector(app))
    app.extensions["lvs_prometheus"] = registry
    metrics.REGISTRY.configure(app.config["SETTINGS"].data_dir)
    app.register_blueprint(bp)

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        g.request_id_token = logs.REQUEST_ID.set(
            logs.new_request_id(request.headers.get("X-Request-ID"))
        )
        metrics.take_queries()  # statements before this request are not its own

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            body = response.response if response.direct_passthrough else None
            record(request.endpoint, response.status_code, started, body)
        response.headers["X-Request-ID"] = logs.REQUEST_ID.get()
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        token: Any = g.pop("request_id_token", None)
        if token is not None:
            try:
                logs.REQUEST_ID.reset(token)
            except ValueError:  # set in another context (a streamed response's iterator)
                logs.REQUEST_ID.set("-")
