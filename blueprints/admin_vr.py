"""An admin's VR corrections: a file's projection override (the watch page's control, a
selection, the JSON API) and marking a folder as VR. Admin-only by name (blueprints/access.py).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from blueprints.common import get_db, render, settings, user_id
from blueprints.vr import item_json, json_error
from services.browse import details
from services.errors import InvalidInput, LVSError
from services.library import folders
from services.playback import projection

log = logging.getLogger(__name__)

bp = Blueprint("admin_vr", __name__)

MAX_BULK = 5000


@bp.put("/api/projection/<media_hash>")
def put_projection(media_hash: str) -> Response:
    """Set a file's override from {"type", "stereo", "eye_swap", "lens"} or {"code": "180_sbs"}."""
    try:
        value = projection.parse_json(request.get_json(silent=True))
        db = get_db()
        projection.set_override(db, projection.media_ids(db, [media_hash]), value, user_id())
        return jsonify(item_json(media_hash))
    except LVSError as exc:
        return json_error(exc)


@bp.delete("/api/projection/<media_hash>")
def delete_projection(media_hash: str) -> Response:
    """Remove a file's override: the name, then the folder's aspect rule, decide again."""
    try:
        db = get_db()
        projection.clear_override(db, projection.media_ids(db, [media_hash]))
        return jsonify(item_json(media_hash))
    except LVSError as exc:
        return json_error(exc)


@bp.post("/api/projection")
def bulk_projection() -> Response:
    """Set (or with "projection": "auto", remove) the override of many media at once.

    Body: {"media": [media_hash, ...], "projection": {...} | "180_sbs" | "auto"}.
    """
    try:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("media"), list):
            raise InvalidInput('the body must be {"media": [media_hash, ...], "projection": ...}')
        hashes = body["media"]
        if not hashes or len(hashes) > MAX_BULK:
            raise InvalidInput(f"media: give 1 to {MAX_BULK} media_hashes")
        wanted = body.get("projection")
        db = get_db()
        ids = projection.media_ids(db, hashes)
        if wanted == "auto":
            projection.clear_override(db, ids)
            return jsonify(updated=len(ids), projection="auto")
        value = (
            projection.from_code(wanted)
            if isinstance(wanted, str)
            else projection.parse_json(wanted)
        )
        projection.set_override(db, ids, value, user_id())
        return jsonify(updated=len(ids), projection=value.code)
    except LVSError as exc:
        return json_error(exc)


def _form_value() -> projection.VRProjection | None:
    code = request.form.get("projection", "")
    if code == "auto":
        return None
    value = projection.from_code(code)
    if request.form.get("eye_swap") and value.stereo != "mono":
        value = projection.make(value.type, value.stereo, True, value.lens)
    return value


@bp.post("/watch/<media_hash>/projection")
def watch_projection(media_hash: str) -> Response:
    """The watch page's control: set or remove the override, then show the page again."""
    db = get_db()
    item = details.item(db, media_hash)
    value = _form_value()
    if value is None:
        projection.clear_override(db, [item.media_id])
    else:
        projection.set_override(db, [item.media_id], value, user_id())
    log.info("projection of %s set to %s", media_hash, value.code if value else "auto")
    target = url_for("watch.page", media_hash=media_hash)
    if request.headers.get("HX-Request") == "true":
        item = details.item(db, media_hash)
        return render(
            "vr/_projection.html",
            item=item,
            override=projection.override_of(db, item.media_id),
            presets=projection.PRESETS,
        )
    return redirect(target, code=303)


@bp.post("/selection/projection")
def selection_projection() -> Response:
    """The selection bar's control: one projection (or auto) for every selected media."""
    hashes = request.form.getlist("media")
    if not hashes or len(hashes) > MAX_BULK:
        raise InvalidInput(f"select 1 to {MAX_BULK} items")
    db = get_db()
    ids = projection.media_ids(db, hashes)
    value = _form_value()
    if value is None:
        projection.clear_override(db, ids)
    else:
        projection.set_override(db, ids, value, user_id())
    log.info("projection of %d media set to %s", len(ids), value.code if value else "auto")
    return jsonify(updated=len(ids), projection=value.code if value else "auto")


@bp.post("/browse/<path:path>/vr")
def folder_vr(path: str) -> Response:
    """Mark or unmark a folder as VR (form field on=1/0), then show the folder again."""
    db = get_db()
    found = folders.find_folder(db, settings().media_dirs, path)
    root = db.execute("SELECT root FROM libraries WHERE id = ?", [found.library_id]).fetchone()[0]
    on = request.form.get("on") == "1"
    projection.mark_folder(db, root, found.rel_path, on)
    log.info("folder %s %s as VR", path, "marked" if on else "unmarked")
    return redirect(url_for("gallery.folder", path=path), code=303)
