"""Gallery pages: home (continue watching, recently added, folders) and /browse/<path>."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request, url_for

from blueprints.common import get_db, render, settings, user_id
from services.browse import browse
from services.library import folders
from services.organize import watchstate
from services.shows import upnext

bp = Blueprint("gallery", __name__)

HOME_REGIONS = {"continue-watching": "home/_continue_watching.html", "recent": "home/_recent.html"}
FOLDER_REGIONS = {"listing": "gallery/_listing.html", "more": "gallery/_more.html"}


@bp.get("/")
def home() -> Response:
    db, uid = get_db(), user_id()
    roots = folders.library_roots(db, settings().media_dirs)
    return render(
        "home/index.html",
        HOME_REGIONS,
        continuing=upnext.continue_watching(db, uid, watchstate.continue_watching(db, user_id=uid)),
        recent=browse.recently_added(db, user_id=uid),
        vr=browse.vr_videos(db, user_id=uid),
        libraries=[(root, folders.subfolders(db, root)) for root in roots],
    )


@bp.get("/browse/")
def browse_root() -> Response:
    return redirect(url_for("gallery.home"))


@bp.get("/browse/<path:path>")
def folder(path: str) -> Response:
    db = get_db()
    found = folders.find_folder(db, settings().media_dirs, path)
    query = browse.parse_query(request.args)
    after = browse.parse_cursor(request.args.get("after"))
    page = browse.folder_page(db, found.id, query, user_id=user_id(), after=after)
    matching = None
    if query.filtered and after is None:
        matching = browse.count_matching(db, found.id, query, user_id=user_id())
    return render(
        "gallery/folder.html",
        FOLDER_REGIONS,
        folder=found,
        query=query,
        page=page,
        matching=matching,
        subfolders=folders.subfolders(db, found) if after is None else [],
        sorts=browse.SORTS,
        codecs=browse.CODECS,
    )
