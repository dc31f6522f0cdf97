"""VR projection as JSON (`GET /api/projection/<media_hash>`) for players and scripts.

The writes (an admin's override, one file or a selection, and VR folder flags) are in
blueprints/admin_vr.py, whose `admin_` name makes them admin-only (blueprints/access.py).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from blueprints.common import get_db
from services.browse import browse, details
from services.errors import LVSError, NotFound
from services.playback import projection
from services.playback.projection import VRProjection

log = logging.getLogger(__name__)

bp = Blueprint("vr", __name__)


def as_dict(p: VRProjection) -> dict[str, Any]:
    """Return a projection as the JSON API states it, with what DeoVR and HereSphere read."""
    return {
        "type": p.type,
        "stereo": p.stereo,
        "eye_swap": p.eye_swap,
        "lens": p.lens,
        "fov": p.fov,
        "source": p.source,
        "badge": p.badge,
        "code": p.code,
        "deovr": projection.deovr_fields(p),
        "heresphere": projection.heresphere_fields(p),
    }


def item_json(media_hash: str) -> dict[str, Any]:
    """Return the projection document of one media item; NotFound when unknown."""
    db = get_db()
    item = details.item(db, media_hash)
    override = projection.override_of(db, item.media_id)
    return {
        "media_hash": item.media_hash,
        "projection": as_dict(item.vr),
        "override": None if override is None else as_dict(override),
        "resolution": item.resolution_label or None,
    }


def json_error(exc: LVSError) -> Response:
    """Answer a refused API call as {"error": ...} with 400/404, and log why."""
    status = 404 if isinstance(exc, NotFound) else 400
    log.info("projection API refused (%d): %s", status, exc)
    response = jsonify(error=str(exc))
    response.status_code = status
    return response


@bp.get("/api/projection/<media_hash>")
def get_projection(media_hash: str) -> Response:
    try:
        return jsonify(item_json(media_hash))
    except LVSError as exc:
        return json_error(exc)


@bp.app_template_global()
def vr_override(media_id: int) -> VRProjection | None:
    """Return a media's override for the watch page's control (templates/vr/_projection.html)."""
    return projection.override_of(get_db(), media_id)


@bp.app_template_global()
def vr_presets() -> tuple[tuple[str, str], ...]:
    """Return the projections an admin picks from."""
    return projection.PRESETS


@bp.app_template_global()
def vr_filters() -> list[tuple[str, str]]:
    """Return the projection filter's choices (value, label) for folder and search pages."""
    return [(value, label) for value, (label, _) in browse.PROJECTIONS.items()]


@bp.app_template_global()
def vr_folder_state(folder: Any) -> tuple[bool, bool]:
    """Return (marked by an admin itself, counts as a VR folder) for a folder page."""
    db = get_db()
    root = db.execute("SELECT root FROM libraries WHERE id = ?", [folder.library_id]).fetchone()
    marked = bool(root) and projection.folder_marked(db, root[0], folder.rel_path)
    return marked, projection.in_vr_folder(db, folder.id)
