"""Markers on the watch page: add at the current time, list, delete."""

from __future__ import annotations

from flask import Blueprint, Response, request

from blueprints.common import get_db, render, user_id
from services.organize import markers, tags

bp = Blueprint("markers", __name__)

REGIONS = {"markers": "watch/_markers.html"}


def _panel(media_hash: str) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    return render(
        "watch/_markers.html",
        REGIONS,
        media_hash=media_hash,
        item_markers=markers.list_for(db, user_id(), mid),
    )


@bp.post("/watch/<media_hash>/markers")
def add(media_hash: str) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    seconds = markers.parse_seconds(request.form.get("seconds"))
    markers.add(db, user_id(), mid, seconds, request.form.get("label", ""))
    return _panel(media_hash)


@bp.post("/watch/<media_hash>/markers/<int:marker_id>/delete")
def delete(media_hash: str, marker_id: int) -> Response:
    markers.delete(get_db(), user_id(), marker_id)
    return _panel(media_hash)
