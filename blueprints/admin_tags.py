"""Admin-only tag maintenance: rename and merge (the access layer requires the admin role)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request, url_for

from blueprints.common import get_db
from services.organize import tags

bp = Blueprint("admin_tags", __name__, url_prefix="/admin/tags")


@bp.post("/rename")
def rename() -> Response:
    tag = tags.rename(get_db(), request.form.get("tag", ""), request.form.get("new", ""))
    return redirect(url_for("tags.tag_page", name=tag.name), 303)


@bp.post("/merge")
def merge() -> Response:
    tag = tags.merge(get_db(), request.form.get("tag", ""), request.form.get("into", ""))
    return redirect(url_for("tags.tag_page", name=tag.name), 303)
