"""Ratings and favourites: the JSON API (`/api/ratings/<media_hash>`, CORS) and the watch page's
rating stars and favourite toggle.

CORS answers only origins listed exactly in LVS_CORS_ORIGINS (no patterns, so no look-alike
domain and no `null` origin slips through) and always says `Vary: Origin`, so a cache never
hands one origin's answer to another.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request

from blueprints.common import get_db, render, settings, user_id
from services import metrics
from services.errors import InvalidInput, NotFound
from services.organize import favorites, metacache, ratings, tags

log = logging.getLogger(__name__)

bp = Blueprint("ratings", __name__)

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization"
MAX_BODY = 4096


def cache() -> metacache.MetaCache:
    return metacache.cache_for(settings().db_path)


def _cors(response: Response) -> Response:
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    origin = request.headers.get("Origin")
    if origin and origin in settings().cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return _cors(response)


@bp.before_app_request
def _answer_preflight() -> Response | None:
    """Answer a CORS preflight before sign-in is asked for: a browser sends it without
    credentials, and it reveals nothing but which methods and headers the API takes."""
    if request.method == "OPTIONS" and request.endpoint == "ratings.preflight":
        return preflight()
    return None


@bp.route("/api/ratings/<media_hash>", methods=["OPTIONS"])
def preflight(media_hash: str = "") -> Response:
    response = _cors(Response(status=204))
    if "Access-Control-Allow-Origin" in response.headers:
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


@bp.get("/api/ratings/<media_hash>")
def get_rating(media_hash: str) -> Response:
    try:
        found = ratings.summary(get_db(), cache(), media_hash, user_id())
    except NotFound as exc:
        return _error(404, str(exc))
    return _cors(jsonify(found.as_dict()))


@bp.post("/api/ratings/<media_hash>")
def post_rating(media_hash: str) -> Response:
    start = time.perf_counter()
    try:
        if (request.content_length or 0) > MAX_BODY:
            raise InvalidInput("body too large")
        body = request.get_json(force=True, silent=True)
        stars = ratings.parse_rating(body)
        found = ratings.rate(get_db(), cache(), media_hash, user_id(), stars)
    except InvalidInput as exc:
        log.info("ratings API: 400 for %s: %s", media_hash[:20], exc)
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))
    metrics.observe("ratings_post", time.perf_counter() - start)
    return _cors(jsonify(found.as_dict()))


def _panel(media_hash: str) -> Response:
    db, uid = get_db(), user_id()
    mid = tags.media_id(db, media_hash)
    return render(
        "watch/_rating.html",
        {"rating": "watch/_rating.html"},
        media_hash=media_hash,
        rating=ratings.summary(db, cache(), media_hash, uid),
        favorite=favorites.is_favorite(db, cache(), mid, uid),
    )


@bp.post("/watch/<media_hash>/rating")
def rate_form(media_hash: str) -> Response:
    value = request.form.get("stars", "")
    stars = (
        None
        if value in ("", "0", ratings.REMOVE)
        else ratings.parse_rating(
            {"rating": int(value) if value.isascii() and value.isdigit() else value}
        )
    )
    ratings.rate(get_db(), cache(), media_hash, user_id(), stars)
    return _panel(media_hash)


@bp.post("/watch/<media_hash>/favorite")
def favorite_form(media_hash: str) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    favorites.set_favorite(db, cache(), mid, user_id(), request.form.get("on") == "1")
    return _panel(media_hash)
