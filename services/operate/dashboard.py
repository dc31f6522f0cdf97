"""What the admin performance dashboard shows, gathered in one JSON-able dict, and its charts.

Request numbers are every gunicorn worker's, merged (services.metrics); memory and CPU are the
answering worker's and its worker pool's; jobs and the watcher are the background owner's when
this worker is the owner, else this worker's own runner (the dashboard says which). With
LVS_REDIS_URL set, `compute` is the workers on other machines and their queues
(services/compute/status.py, cached: a Redis that hangs holds no page).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from services import metrics
from services.compute import status as compute_status
from services.compute.settings import ComputeSettings
from services.library import library
from services.operate import maintenance, sysinfo, wal
from services.operate.logs import RECENT_ERRORS
from services.playback import encoders, transcoder

MS = 1000.0
FAILURES_SHOWN = 20


def _ms(value: float) -> float:
    return round(value * MS, 2)


def _series(s: metrics.Series) -> dict[str, Any]:
    return {
        "count": s.count,
        "total": s.total,
        "avg_ms": _ms(s.avg),
        "p50_ms": _ms(s.p50),
        "p95_ms": _ms(s.p95),
        "p99_ms": _ms(s.p99),
        "max_ms": _ms(s.max),
    }


def requests_part(snap: metrics.Snapshot) -> dict[str, Any]:
    """Return request, ratings, cache and query numbers from a metrics snapshot."""
    endpoints = {s.name.removeprefix("request:"): _series(s) for s in snap.endpoints()}
    queries = snap.get("db_queries")
    return {
        "uptime_seconds": round(time.time() - snap.started, 1),
        "workers": snap.workers,
        "window_seconds": metrics.SLICE * metrics.SLICES,
        "requests": {
            "count": sum(e["count"] for e in endpoints.values()),
            "total": sum(e["total"] for e in endpoints.values()),
            "endpoints": endpoints,
        },
        "ratings_post": _series(snap.get("ratings_post")),
        "cache": {
            "hits": snap.counters.get("cache_hit", 0),
            "misses": snap.counters.get("cache_miss", 0),
            "hit_rate": snap.cache_hit_rate(),
        },
        "db_queries_per_request": {
            "avg": round(queries.avg, 2),
            "p95": round(queries.p95, 1),
            "max": queries.max,
        },
        "errors_total": snap.counters.get("errors", 0),
        "active_streams": snap.active_streams(),
        "streams_total": snap.counters.get("streams_started", 0),
        "charts": {
            "requests_per_second": [[t, round(v, 3)] for t, v in snap.rate],
            "p95_ms": [[t, _ms(v)] for t, v in snap.p95],
        },
    }


def library_part(db: Database) -> dict[str, Any]:
    """Return library totals, breakdowns and recent failures with their reasons."""
    s = library.stats(db)
    probe_failures = db.execute(
        """SELECT l.root, f.path, e.reason, e.failed_at FROM probe_errors e
           JOIN files f ON f.id = e.file_id JOIN libraries l ON l.id = f.library_id
           WHERE f.present = 1 ORDER BY e.failed_at DESC LIMIT ?""",
        [FAILURES_SHOWN],
    ).fetchall()
    thumb_failures = db.execute(
        """SELECT t.kind, t.media_hash, t.reason, t.made_at,
                  (SELECT f.name FROM files f WHERE f.media_id = t.media_id AND f.present = 1
                   LIMIT 1)
           FROM thumbs t WHERE t.status = 'failed' ORDER BY t.made_at DESC LIMIT ?""",
        [FAILURES_SHOWN],
    ).fetchall()
    thumb_counts = dict(
        db.execute("SELECT kind || ':' || status, count(*) FROM thumbs GROUP BY 1").fetchall()
    )
    purge = maintenance.count_missing(db)
    return {
        "totals": {
            "libraries": s.libraries,
            "offline": s.offline,
            "items": s.media,
            "videos": s.videos,
            "pictures": s.pictures,
            "files": s.files,
            "size_bytes": s.total_size,
            "duration_seconds": round(s.total_duration, 1),
            "missing": s.missing,
            "failed": s.failed,
            "pending": s.pending,
            "duplicates": s.duplicates,
            "purgeable_files": purge.files,
            "purgeable_media": purge.media,
        },
        "codecs": [list(c) for c in s.codecs],
        "resolutions": [list(r) for r in s.resolutions],
        "previews": thumb_counts,
        "failure_reasons": [list(r) for r in library.failure_reasons(db)],
        "probe_failures": [
            {
                "path": os.path.join(root, os.fsdecode(path)),
                "reason": reason,
                "at": at,
            }
            for root, path, reason, at in probe_failures
        ],
        "preview_failures": [
            {"kind": kind, "media_hash": h, "name": name, "reason": reason, "at": at}
            for kind, h, reason, at, name in thumb_failures
        ],
    }


def jobs_part(background: Any) -> dict[str, Any] | None:
    """Return the job runner's queues, running jobs with progress, and recent failures."""
    jobs = getattr(background, "jobs", None)
    if jobs is None:
        return None
    st = jobs.status()
    running = []
    for job in st.running:
        info = asdict(job)
        info["percent"] = round(100.0 * job.done / job.total, 1) if job.total else None
        running.append(info)
    return {
        "owner": bool(getattr(background, "owner", False)),
        "inline": st.inline,
        "paused": st.paused,
        "workers": st.workers,
        "queued": st.queued,
        "queued_by_priority": st.queued_by_priority,
        "running": running,
        "done": st.done,
        "failed": st.failed,
        "sent": st.sent,  # left to workers on other machines (LVS_REDIS_URL)
        "missing": st.missing,
        "scan": asdict(st.scan) if st.scan else None,
        "errors": [
            {"at": at, "kind": kind, "target": target, "reason": reason}
            for at, kind, target, reason in reversed(st.errors)
        ],
    }


def watcher_part(background: Any, db: Database) -> list[dict[str, Any]]:
    """Return how each library is followed: events, polling, offline, or not watched here."""
    watcher = getattr(background, "watcher", None)
    if watcher is not None:
        return _roots(watcher)
    return [
        {
            "root": lib.root,
            "mode": "offline"
            if lib.state == "offline"
            else ("off" if getattr(background, "owner", False) else "watched by another worker"),
            "reason": lib.state_reason or "",
            "events": 0,
            "last_change": None,
            "pending": 0,
        }
        for lib in library.list_libraries(db)
    ]


def publish_owner(background: Any) -> None:
    """Share this process's jobs and watcher with the other workers' dashboards."""
    metrics.REGISTRY.publish("jobs", lambda: jobs_part(background))
    metrics.REGISTRY.publish("watcher", lambda: _watching(background))


def _watching(background: Any) -> list[dict[str, Any]]:
    watcher = getattr(background, "watcher", None)
    if watcher is not None:
        return _roots(watcher)
    jobs = getattr(background, "jobs", None)
    roots = jobs.settings.media_dirs if jobs is not None else ()
    return [
        {
            "root": str(root),
            "mode": "off",
            "reason": "LVS_WATCH=off",
            "events": 0,
            "last_change": None,
            "pending": 0,
        }
        for root in roots
    ]


def _roots(watcher: Any) -> list[dict[str, Any]]:
    return [
        {
            "root": str(r.root),
            "mode": r.mode,
            "reason": r.reason,
            "events": r.events,
            "last_change": r.last_change,
            "pending": r.pending,
        }
        for r in watcher.status()
    ]


def compute_part(cfg: ComputeSettings | None) -> dict[str, Any]:
    """Return the workers on other machines and their queues; {"enabled": False} alone on a
    single node (the dashboard then shows nothing of them)."""
    if cfg is None or not cfg.enabled:
        return {"enabled": False}
    out = compute_status.cached(cfg).as_dict()
    out["local_work"] = cfg.local_work
    return out


def collect(db: Database, data_dir: Path, background: Any,
            compute: ComputeSettings | None = None) -> dict[str, Any]:  # fmt: skip
    """Return everything the dashboard shows (see the module docstring)."""
    proc = sysinfo.process()
    snap = metrics.snapshot()
    out = requests_part(snap)
    out["process"] = {
        "pid": proc.pid,
        "rss_bytes": proc.rss,
        "pool_rss_bytes": proc.children_rss,
        "cpu_percent": round(proc.cpu_percent, 1),
        "threads": proc.threads,
    }
    owner = bool(getattr(background, "owner", False))
    # Another worker runs the background jobs: show its queues and watcher (it publishes them).
    out["jobs"] = (None if owner else snap.extras.get("jobs")) or jobs_part(background)
    out["library"] = library_part(db)
    out["watcher"] = (None if owner else snap.extras.get("watcher")) or watcher_part(background, db)
    out["disk"] = {
        name: {"bytes": size, "files": files}
        for name, (size, files) in sysinfo.cache_usage(data_dir).items()
    }
    out["database"] = wal.status(data_dir / "library.db")
    out["playback"] = playback_part(db, data_dir)
    out["compute"] = compute_part(compute)
    out["recent_errors"] = [asdict(e) for e in RECENT_ERRORS.recent()[:20]]
    out["generated_at"] = time.time()
    return out


def playback_part(db: Database, data_dir: Path) -> dict[str, Any]:
    """Return the active playbacks (who, what, how and why, encoder, speed, segments ahead),
    the encoder in use and the transcode cache's size."""
    root = data_dir / "hls"
    sessions = transcoder.list_sessions(root) if root.is_dir() else []
    names = dict(db.execute("SELECT id, name FROM users").fetchall()) if sessions else {}
    titles = {}
    for s in sessions:
        row = db.execute(
            "SELECT f.name FROM media m JOIN files f ON f.media_id = m.id "
            "WHERE m.media_hash = ? ORDER BY f.present DESC, f.id LIMIT 1",
            [s.media_hash],
        ).fetchone()
        titles[s.media_hash] = row[0] if row else s.media_hash
    size, segments = transcoder.cache_usage(root) if root.is_dir() else (0, 0)
    choice = encoders.detect()
    return {
        "sessions": [
            {**asdict(s), "user": names.get(s.user_id, "guest"), "title": titles[s.media_hash]}
            for s in sessions
        ],
        "encoders_running": sum(1 for s in sessions if s.encoder),
        "encoder": asdict(choice),
        "cache_bytes": size,
        "cache_segments": segments,
    }


def polyline(points: list[list[float]], width: int = 300, height: int = 60) -> dict[str, Any]:
    """Return an SVG polyline's points scaled into width x height, with the series' maximum."""
    values = [p[1] for p in points]
    top = max(values, default=0.0) or 1.0
    n = max(len(values) - 1, 1)
    coords = " ".join(
        f"{i * width / n:.1f},{height - 2 - v / top * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return {"points": coords, "max": max(values, default=0.0), "width": width, "height": height}
