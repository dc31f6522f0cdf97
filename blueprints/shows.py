"""Shows, a show, a season, Movies, and the cached artwork they show."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, redirect, request, url_for

from blueprints.common import get_db, render, settings, user_id
from blueprints.media import IMMUTABLE, send_path
from services.errors import LVSError, NotFound
from services.playback import decision
from services.shows import artwork, choose, grid, seasons, upnext

bp = Blueprint("shows", __name__)
log = logging.getLogger(__name__)

GRID_REGIONS = {"more": "shows/_more.html", "grid": "shows/_grid.html"}
_ART_KEY = re.compile(r"[0-9a-f]{16}-\d{2,4}")


@bp.app_template_global()
def title_filters() -> tuple[list[str], bool]:
    """Return (genres, whether any show or movie exists) for folder and search pages' filters."""
    return grid.title_filters(get_db())


@bp.get("/shows")
def index() -> Response:
    db, filters = get_db(), grid.parse_filters(request.args)
    page = grid.list_shows(db, after=request.args.get("after"), filters=filters)
    return render(
        "shows/index.html",
        GRID_REGIONS,
        page=page,
        filters=filters,
        genres=grid.genres(db, "shows"),
    )


@bp.get("/shows/<int:show_id>")
def show(show_id: int) -> Response:
    return render("shows/show.html", show=seasons.show(get_db(), show_id, user_id()))


@bp.get("/shows/<int:show_id>/season/<int:number>")
def season(show_id: int, number: int) -> Response:
    db, uid = get_db(), user_id()
    found = seasons.show(db, show_id, uid)
    this = next((s for s in found.seasons if s.number == number), None)
    if this is None:
        raise NotFound("no such season")
    eps = seasons.episodes(db, show_id, uid, season=number)
    return render("shows/season.html", show=found, season=this, episodes=eps)


@bp.get("/movies")
def movies() -> Response:
    db, filters = get_db(), grid.parse_filters(request.args)
    sort = request.args.get("sort", "title")
    after = request.args.get("after")
    page = grid.list_movies(db, sort=sort, after=after, user_id=user_id(), filters=filters)
    return render(
        "shows/movies.html",
        GRID_REGIONS,
        page=page,
        sort=sort,
        sorts=grid.MOVIE_SORTS,
        filters=filters,
        genres=grid.genres(db, "movies"),
    )


CAPS_COOKIE = "lvs_caps"  # what static/js/versions.js says this browser plays, for /play only


def _caps() -> decision.Capabilities:
    """Return this browser's capabilities: `caps=` if given, else its cookie, else none.

    A malformed `caps=` is the caller's 400; a malformed cookie is ignored (with a log line):
    the person clicking a poster cannot mend it.
    """
    if "caps" in request.args:
        return decision.parse_capabilities(request.args["caps"])
    try:
        return decision.parse_capabilities(request.cookies.get(CAPS_COOKIE))
    except LVSError as exc:
        log.info("ignoring the %s cookie: %s", CAPS_COOKIE, exc)
        return decision.parse_capabilities(None)


@bp.get("/play/movie/<int:movie_id>")
def play_movie(movie_id: int) -> Response:
    """Open the version of a film this browser plays best (choose.best)."""
    db = get_db()
    versions = upnext.movie_versions(db, movie_id)
    if not versions:
        raise NotFound("no such movie")
    best = choose.best(db, versions, _caps(), settings().media_dirs)
    return redirect(url_for("watch.page", media_hash=best.media_hash))


@bp.get("/play/<media_hash>")
def play_version(media_hash: str) -> Response:
    """Open the version of this file's film or episode this browser plays best (itself if one)."""
    db = get_db()
    row = db.execute(
        "SELECT f.id FROM media m JOIN files f ON f.media_id = m.id AND f.present = 1 "
        "WHERE m.media_hash = ? LIMIT 1",
        [media_hash],
    ).fetchone()
    if row is None:
        raise NotFound("no such media")
    versions = upnext.versions(db, row[0])
    caps = _caps()
    best = choose.best(db, versions, caps, settings().media_dirs) if versions else None
    return redirect(url_for("watch.page", media_hash=best.media_hash if best else media_hash))


@bp.get("/art/<key>.jpg")
def art(key: str) -> Response:
    """Send a cached poster, fanart or thumb (made by the scan from the pictures beside media)."""
    if not _ART_KEY.fullmatch(key):
        raise NotFound("no such picture")
    return send_path(artwork.cache_path(settings().data_dir, key), IMMUTABLE)
