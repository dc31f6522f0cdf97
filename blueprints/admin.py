"""The admin performance dashboard, its JSON, and the admin actions (scan, thumbnails, purge)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    request,
    url_for,
)

from blueprints.common import get_db, render, settings
from services import db as dbmod
from services.compute.settings import ComputeSettings
from services.operate import dashboard, maintenance

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_filter("hms")
def hms(timestamp: float) -> str:
    """Return a Unix time as the local 15:04:05."""
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


REGIONS = {"performance-live": "admin/_performance_live.html"}


def _background() -> Any:
    return current_app.extensions.get("background")


def _jobs() -> Any:
    return getattr(_background(), "jobs", None)


def _data() -> dict[str, Any]:
    s = settings()
    return dashboard.collect(get_db(), s.data_dir, _background(), ComputeSettings.of(s))


@bp.get("/")
def index() -> Response:
    return redirect(url_for("admin.performance"))


@bp.get("/performance.json")
def performance_json() -> Response:
    response = jsonify(_data())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/performance")
def performance() -> Response:
    data = _data()
    charts = {
        "rate": dashboard.polyline(data["charts"]["requests_per_second"]),
        "p95": dashboard.polyline(data["charts"]["p95_ms"]),
    }
    response = render(
        "admin/performance.html",
        REGIONS,
        d=data,
        charts=charts,
        message=request.args.get("done", ""),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _done(message: str, status: int = 303) -> Response:
    return redirect(url_for("admin.performance", done=message), status)


@bp.post("/actions/scan")
def start_scan() -> Response:
    jobs = _jobs()
    if jobs is None:
        return _done("Background jobs are off (LVS_BACKGROUND=off): run `flask scan`.")
    job = jobs.scan(full=request.form.get("full") == "1")
    return _done(f"Scan started (job {job.id}).")


@bp.post("/actions/thumbnails")
def regenerate_thumbnails() -> Response:
    """Look again for every missing thumbnail and scrub preview and queue them."""
    jobs = _jobs()
    if jobs is None:
        return _done("Background jobs are off: run `flask thumbnails`.")
    jobs.backlog()
    if jobs.inline:
        jobs.run_pending()
    return _done("Looking for missing thumbnails and previews.")


@bp.post("/actions/retry-failed")
def retry_failed() -> Response:
    """Forget recorded failures (thumbnails, sprites, probes) so they are tried again."""
    db = get_db()
    folders = {
        Path(root) / os.fsdecode(path)
        for root, path in db.execute(
            """SELECT l.root, fo.path FROM probe_errors e JOIN files f ON f.id = e.file_id
               JOIN folders fo ON fo.id = f.folder_id JOIN libraries l ON l.id = f.library_id
               WHERE l.state != 'offline'"""
        )
    }
    with dbmod.write(db):
        previews = db.execute("DELETE FROM thumbs WHERE status = 'failed'").rowcount
        probes = db.execute("DELETE FROM probe_errors").rowcount
        db.execute("UPDATE media SET probe_status = 'pending' WHERE probe_status = 'failed'")
    jobs = _jobs()
    if jobs is not None:
        if folders:
            jobs.scan(sorted(folders), full=True)
        jobs.backlog()
        if jobs.inline:
            jobs.run_pending()
    return _done(f"Retrying {previews} failed previews and {probes} failed files.")


@bp.get("/purge")
def purge_confirm() -> Response:
    count = maintenance.count_missing(get_db())
    return render("admin/purge.html", count=count)


@bp.post("/actions/purge")
def purge() -> Response:
    """Purge missing items, only when the form confirms the count it was shown."""
    db = get_db()
    count = maintenance.count_missing(db)
    expected = f"{count.files}:{count.media}"
    if request.form.get("confirm") != expected:
        # 200, not 409: htmx swaps only successful answers, and this page is the answer.
        return render("admin/purge.html", count=count, changed=True)
    done = maintenance.purge_missing(db)
    return _done(f"Purged {done.files} missing files and {done.media} items.")
