"""Health probes: /health (trivial), /livez (the process answers), /readyz (it can serve)."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response, jsonify

from blueprints.common import get_db, settings
from services.errors import LVSError
from services.library import library

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    return Response("ok\n", mimetype="text/plain")


@bp.get("/livez")
def livez() -> Response:
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when the database answers and every configured library is recorded."""
    try:
        known = {lib.root: lib for lib in library.list_libraries(get_db())}
    except (sqlite3.Error, LVSError) as exc:
        return jsonify(ready=False, database=f"error: {exc}", libraries=[]), 503
    libs = [
        {"root": str(root), "state": known[str(root)].state if str(root) in known else "unknown"}
        for root in settings().media_dirs
    ]
    ready = all(lib["state"] != "unknown" for lib in libs)
    return jsonify(ready=ready, database="ok", libraries=libs), 200 if ready else 503
