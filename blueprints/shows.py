"""Shows, a show, a season, Movies, and the cached artwork they show."""

from __future__ import annotations

import re

from flask import Blueprint, Response, redirect, request, url_for

from blueprints.common import get_db, render, settings, user_id
from blueprints.media import IMMUTABLE, send_path
from services.errors import LVSError, NotFound
from services.playback import decision, media_files, playability, source
from services.shows import artwork, catalog, grid, upnext

bp = Blueprint("shows", __name__)

GRID_REGIONS = {"more": "shows/_more.html", "grid": "shows/_grid.html"}
_ART_KEY = re.compile(r"[0-9a-f]{16}-\d{2,4}")


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
    return render("shows/show.html", show=catalog.show(get_db(), show_id, user_id()))


@bp.get("/shows/<int:show_id>/season/<int:number>")
def season(show_id: int, number: int) -> Response:
    db, uid = get_db(), user_id()
    found = catalog.show(db, show_id, uid)
    this = next((s for s in found.seasons if s.number == number), None)
    if this is None:
        raise NotFound("no such season")
    eps = catalog.episodes(db, show_id, uid, season=number)
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


@bp.get("/movies/<int:movie_id>/play")
def play_movie(movie_id: int) -> Response:
    """Open the best version of a film this browser plays directly (else the best one).

    `caps` (the capability names static/js reports, services/playback/decision.py) says what
    this browser plays; without it, what every browser plays is assumed.
    """
    db = get_db()
    versions = upnext.movie_versions(db, movie_id)
    if not versions:
        raise NotFound("no such movie")
    caps = decision.parse_capabilities(request.args.get("caps"))
    best = next((v for v in versions if _plays_directly(v, caps)), versions[0])
    return redirect(url_for("watch.page", media_hash=best.media_hash))


def _plays_directly(version: upnext.Version, caps: decision.Capabilities) -> bool:
    """Return whether the play decision for this browser is direct play of the original."""
    if not playability.can_play(version).ok and not caps.reported:
        return False
    try:
        media = media_files.open_media(get_db(), version.media_hash, settings().media_dirs)
    except LVSError:
        return False
    with media.file as f:
        st = media.stat
        try:
            src = source.load(
                get_db(), version.media_hash, f.fileno(), (st.st_size, st.st_mtime_ns)
            )
        except LVSError:
            return False
    made = decision.decide(src, caps, decision.parse_choice({}, src))
    return made.method == decision.Method.DIRECT


@bp.get("/art/<key>.jpg")
def art(key: str) -> Response:
    """Send a cached poster, fanart or thumb (made by the scan from the pictures beside media)."""
    if not _ART_KEY.fullmatch(key):
        raise NotFound("no such picture")
    return send_path(artwork.cache_path(settings().data_dir, key), IMMUTABLE)
