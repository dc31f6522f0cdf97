"""Live pages and the installable app: the change feed, the service worker, the manifest and the
offline page (issue 19).

The feed is polled by visible pages every few seconds with the token they were rendered with
(`<seq>-<activity version>`); nothing new is a 204 after one lookup, so an idle open tab holds
no thread and costs one short request per poll. See services/live.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    render_template,
    request,
    url_for,
)

from blueprints.common import get_db, settings
from services.live import feed
from services.live.activity import Reader

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__)
TOKEN = re.compile(r"(\d{1,18})-(\d{1,20})")
NO_STORE = {"Cache-Control": "no-store"}
POLL_MS = 2000  # how often a visible page asks; a change shows within about this plus the scan
ICON_SIZES = (192, 512)


def _reader() -> Reader:
    return current_app.extensions["live_activity"]


def _admin() -> bool:
    user = g.get("user")
    return bool(user is not None and user.is_admin)


def token() -> str:
    """Return the feed token of what the page being rendered shows.

    Activity version 0 is never a real one: an admin's page hears what runs at its first poll.
    """
    return f"{feed.latest(get_db())}-0"


@bp.get("/live/feed")
def changes() -> Response:
    """Answer 204 when nothing changed since `since`, else what changed and the new token."""
    found = TOKEN.fullmatch(request.args.get("since", ""))
    if found is None:
        log.info("live feed: bad since %r", request.args.get("since", "")[:40])
        return Response("since: expected the token the page was given\n", 400, NO_STORE)
    seq, version = int(found[1]), int(found[2])
    db = get_db()
    activity = _activity() if _admin() else None
    top = feed.latest(db)
    if top == seq and (activity is None or activity["v"] == version):
        return Response(status=204, headers=NO_STORE)
    got = feed.since(db, seq)
    body: dict[str, Any] = {
        "token": f"{got.seq}-{activity['v'] if activity else 0}",
        "reset": got.reset,
        "folders": got.folders,
        "added": got.added,
        "gone": got.gone,
        "thumbs": got.thumbs,
        "meta": got.meta,
    }
    if activity is not None:
        body["activity"] = {"running": activity["running"], "queued": activity["queued"]}
    response = jsonify(body)
    response.headers.update(NO_STORE)
    return response


def _activity() -> dict[str, Any]:
    """Return the job runners' activity and the running transcodes, with one version for both."""
    found = _reader().read()
    transcodes = _transcodes()
    if not transcodes:
        return found
    digest = zlib.crc32(json.dumps(transcodes, sort_keys=True).encode())
    return {**found, "v": found["v"] + digest, "running": [*found["running"], *transcodes]}


def _transcodes() -> list[dict[str, Any]]:
    """Return the HLS sessions whose encoder runs now (any process's: their state is in files)."""
    sessions = settings().data_dir / "hls" / "sessions"
    if not sessions.is_dir() or next(sessions.glob("*.json"), None) is None:
        return []  # nothing transcodes: no transcoder made just to say so
    from blueprints.hls import transcoder

    return [
        {
            "kind": "transcode",
            "phase": "far enough ahead" if s.paused else f"{s.speed:g}× real time",
            "target": s.media_hash,
            "done": s.ahead,
            "total": None,
            "percent": None,
        }
        for s in transcoder().sessions()
        if s.encoder
    ]


@bp.get("/sw.js")
def service_worker() -> Response:
    """Send the service worker from the site's root, so its scope is every page."""
    response = Response(_worker_source(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # the browser checks for a new one each visit
    response.headers["Service-Worker-Allowed"] = "/"
    return response


def _worker_source() -> str:
    asset = current_app.jinja_env.globals["asset"]
    shell = [
        url_for("live.offline"),
        asset("css/app.css"),
        asset("vendor/htmx/htmx.min.js"),
        asset("js/app.js"),
        asset("favicon.svg"),
        *(asset(f"icons/icon-{n}.png") for n in ICON_SIZES),
    ]
    config = {
        "version": current_app.config["ASSET_VERSION"],
        "shell": shell,
        "offline": url_for("live.offline"),
        "static": url_for("static", filename=""),
    }
    return _source().replace("self.LVS_CONFIG", json.dumps(config), 1)


@cache
def _source() -> str:
    return (Path(current_app.static_folder or "static") / "sw.js").read_text()


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """Send the web app manifest: name, icons, colours, standalone, shortcuts."""
    asset = current_app.jinja_env.globals["asset"]
    icons = [
        {"src": asset(f"icons/icon-{n}.png"), "sizes": f"{n}x{n}", "type": "image/png"}
        for n in ICON_SIZES
    ]
    icons.append(
        {
            "src": asset("icons/maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        }
    )
    shortcut_icon = [{"src": asset("icons/icon-96.png"), "sizes": "96x96", "type": "image/png"}]
    body = {
        "id": url_for("gallery.home"),
        "name": "Local Video Server",
        "short_name": "Videos",
        "description": "Your home's videos and pictures",
        "start_url": url_for("gallery.home"),
        "scope": url_for("gallery.home"),
        "display": "standalone",
        "background_color": "#0f1115",
        "theme_color": "#181b22",
        "icons": icons,
        "shortcuts": [
            {
                "name": "Continue watching",
                "url": url_for("gallery.home") + "#continue-watching",
                "icons": shortcut_icon,
            },
            {"name": "Search", "url": url_for("search.page"), "icons": shortcut_icon},
        ],
    }
    response = Response(json.dumps(body), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline")
def offline() -> Response:
    """Send the page the service worker shows when the server does not answer (no user data)."""
    response = Response(render_template("live/offline.html"))
    response.headers["Cache-Control"] = "no-cache"
    return response


def install(app: Flask) -> None:
    """Register the routes, the activity reader and the `live_token()` template helper."""
    app.register_blueprint(bp)
    app.extensions["live_activity"] = Reader(app.config["SETTINGS"].data_dir)
    app.jinja_env.globals.update(
        live_token=token,
        live_poll_ms=POLL_MS,
        live_guests=app.config["SETTINGS"].guest,  # LVS_GUEST=on: guests' pages are live too
    )
