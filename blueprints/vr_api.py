"""The native VR players' APIs (SPEC appendix A): DeoVR and HereSphere.

    GET|POST /deovr                      the library (sections of scenes)
    GET|POST /deovr/<media_hash>         one scene
    POST     /heresphere                 the library (sections of video URLs)
    POST     /heresphere/auth            {username, password} -> {"auth-token", "access"}
    POST     /heresphere/<media_hash>    one video; may carry write-back and deleteFile
    POST     /heresphere/event/<media_hash>   the eventServer: play/pause/close -> resume, history

These endpoints check their own credentials (blueprints/access.py lets `vr_api.*` through
without a session and without CSRF): DeoVR's form fields `login`/`password`, HereSphere's
`auth-token` header (or `username`/`password` in the body), or the usual API token / session.
DeoVR always answers HTTP 200 with `authorized` "1" (signed in), "0" (no credentials) or "-1"
(wrong credentials); HereSphere answers `access` 1 / 0 (sign in) / -1 (wrong) and every answer
carries `HereSphere-JSON-Version: 1`. Wrong passwords count against the sign-in rate limits.
Every URL is absolute; media URLs are signed, expiring and bound to the user
(services/people/apitokens.py), so a player without cookies streams with Range, and a disabled
account's URLs stop working. CORS only for LVS_CORS_ORIGINS.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    url_for,
)

from blueprints import access
from blueprints.common import get_db, settings
from services.errors import InvalidInput, NotFound
from services.organize import metacache
from services.people import apitokens, users
from services.playback import projection
from services.previews import clips
from services.vrapi import catalog, players

log = logging.getLogger(__name__)

bp = Blueprint("vr_api", __name__)

HS_VERSION = ("HereSphere-JSON-Version", "1")
MAX_BODY = 64 * 1024
ALLOW_HEADERS = "Content-Type, Authorization, auth-token, HereSphere-JSON-Version"


def _secret() -> bytes:
    return current_app.extensions["media_secret"]


def _cache() -> metacache.MetaCache:
    return metacache.cache_for(settings().db_path)


@bp.after_request
def _headers(response: Response) -> Response:
    if request.path.startswith("/heresphere"):
        response.headers[HS_VERSION[0]] = HS_VERSION[1]
    response.headers["Cache-Control"] = "no-store"
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    origin = request.headers.get("Origin")
    if origin and origin in settings().cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    return response


def _body() -> dict[str, Any]:
    """Return the request's fields: a JSON object, or form fields; {} for none."""
    if request.method not in ("POST", "PUT"):
        return {}
    if (request.content_length or 0) > MAX_BODY:
        raise InvalidInput("the request body is too large")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise InvalidInput("the request body is too large")
    if request.form:
        return {k: request.form[k] for k in request.form}
    if not raw.strip():
        return {}
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _password_sign_in(name: Any, password: Any) -> users.User | None:
    """Check a player's name and password against the sign-in limits; None when refused."""
    name = name if isinstance(name, str) else ""
    if access.sign_in_blocked(name):
        log.info("VR player sign-in for %r from %s refused: too many attempts", name[:64],
                 access.client_ip())  # fmt: skip
        return None
    user = players.check_password(
        get_db(), _secret(), name, password if isinstance(password, str) else ""
    )
    if user is None:
        access.sign_in_failed(name)
    return user


def _signed(endpoint: str, user_id: int, media_hash: str, **values: Any) -> str:
    params = apitokens.sign_media(_secret(), user_id, media_hash)
    return url_for(endpoint, media_hash=media_hash, _external=True, **values, **params)


SAMPLE_HASH = "f" * 16  # stands for each video's hash in a URL built once per answer


def _url_maker(endpoint: str, signed_for: int | None = None) -> Callable[[str], str]:
    """Return a function making `endpoint`'s absolute URL for a media hash (signed for the user
    `signed_for`): url_for once, then string work, since a library answer holds thousands."""
    template = url_for(endpoint, media_hash=SAMPLE_HASH, _external=True)
    head, _, tail = template.partition(SAMPLE_HASH)
    secret = _secret()
    if signed_for is None:
        return lambda media_hash: f"{head}{media_hash}{tail}"

    now = time.time()  # one expiry for the whole answer
    made: dict[str, str] = {}  # a video in two sections is signed once

    def make(media_hash: str) -> str:
        url = made.get(media_hash)
        if url is None:
            p = apitokens.sign_media(secret, signed_for, media_hash, now=now)
            url = made[media_hash] = f"{head}{media_hash}{tail}?u={p['u']}&e={p['e']}&s={p['s']}"
        return url

    return make


def _bad(exc: InvalidInput, answer: dict[str, Any]) -> Response:
    """Refuse bad input: 400 with the reason (DeoVR: 200, its answers are always 200)."""
    deovr = request.path.startswith("/deovr")
    log.info("%s %s -> %d: %s", request.method, request.path, 200 if deovr else 400, exc)
    response = jsonify({**answer, "error": str(exc)})
    response.status_code = 200 if deovr else 400
    return response


# --- DeoVR ------------------------------------------------------------------------------------


def _deovr_user(body: Mapping[str, Any]) -> tuple[users.User | None, str]:
    if body.get("login") or body.get("password"):
        user = _password_sign_in(body.get("login"), body.get("password"))
        return user, "1" if user else "-1"
    user = g.get("user")
    return (user, "1") if user is not None else (None, "0")


@bp.route("/deovr", methods=["GET", "POST"])
def deovr_library() -> Response:
    try:
        body = _body()
    except InvalidInput as exc:
        return _bad(exc, {"authorized": "0", "scenes": []})
    user, authorized = _deovr_user(body)
    if user is None:
        return jsonify(authorized=authorized, scenes=[])
    thumb, scene = _url_maker("media.thumb", user.id), _url_maker("vr_api.deovr_scene")
    scenes = []
    for section in catalog.sections(get_db(), user.id):
        scenes.append(
            {
                "name": section.name,
                "list": [
                    {
                        "title": e.title,
                        "videoLength": round(e.duration),
                        "thumbnailUrl": thumb(e.media_hash),
                        "video_url": scene(e.media_hash),
                    }
                    for e in section.entries
                ],
            }
        )
    return jsonify(authorized="1", scenes=scenes)


def _clip_url(user_id: int, media_hash: str) -> str | None:
    """Return the preview clip's signed URL when it has been made, else None (field omitted)."""
    if clips.made(settings().data_dir, media_hash) is None:
        return None
    return _signed("media.clip", user_id, media_hash)


def _sources(v: catalog.Video, user_id: int) -> dict[str, dict[str, Any]]:
    """Return the original's and the HLS rendition's source (url, size, resolution)."""
    item = v.item
    width, height = int(item.width or 0), int(item.height or 0)
    base = {"resolution": height, "height": height, "width": width}
    return {
        "original": {
            **base,
            "size": int(item.size or 0),
            "url": _signed("media.file", user_id, item.media_hash),
        },
        "hls": {**base, "size": 0, "url": _signed("media.hls.master", user_id, item.media_hash)},
    }


@bp.route("/deovr/<media_hash>", methods=["GET", "POST"])
def deovr_scene(media_hash: str) -> Response:
    try:
        body = _body()
    except InvalidInput as exc:
        return _bad(exc, {"authorized": "0"})
    user, authorized = _deovr_user(body)
    if user is None:
        return jsonify(authorized=authorized)
    try:
        v = catalog.video(get_db(), _cache(), media_hash, user.id)
    except NotFound as exc:  # DeoVR answers are always HTTP 200 (appendix A)
        log.info("DeoVR scene %s: %s", media_hash[:40], exc)
        return jsonify(authorized="1", error="no such video")
    item, src = v.item, _sources(v, user.id)
    encoding = (
        {"name": "original", "videoSources": [src["original"]]}
        if v.plays_directly
        else {"name": "hls", "videoSources": [src["hls"]]}
    )
    fields = projection.deovr_fields(v.vr)
    scene: dict[str, Any] = dict(
        id=item.media_id,
        title=v.title,
        authorized="1",
        description=v.description,
        date=int(item.added_at),
        isFavorite=v.is_favorite,
        is3d=fields["is3d"],
        thumbnailUrl=_signed("media.thumb", user.id, item.media_hash),
        screenType=fields["screenType"],
        stereoMode=fields["stereoMode"],
        videoLength=round(v.duration),
        encodings=[encoding],
        timeStamps=[{"ts": round(m.seconds), "name": m.label} for m in v.markers],
    )
    preview = _clip_url(user.id, item.media_hash)
    if preview:
        scene["videoPreview"] = preview
    return jsonify(scene)


# --- HereSphere -------------------------------------------------------------------------------


def _hs_user(body: Mapping[str, Any]) -> tuple[users.User | None, int, str]:
    """Return (user, access, how): the auth-token, else the body's credentials, else the
    request's API token or session."""
    token = request.headers.get("auth-token")
    if token:
        user = players.check_token(get_db(), _secret(), token)
        if user is not None:
            return user, 1, "token"
        log.info("HereSphere auth-token refused from %s", access.client_ip())
        if not (body.get("username") or body.get("password")):
            return None, 0, ""
    if body.get("username") or body.get("password"):
        user = _password_sign_in(body.get("username"), body.get("password"))
        return user, (1 if user else -1), "password"
    user = g.get("user")
    if user is not None:
        return user, 1, user.via
    return None, 0, ""


@bp.post("/heresphere/auth")
def heresphere_auth() -> Response:
    try:
        body = _body()
    except InvalidInput as exc:
        return _bad(exc, {"access": 0})
    user = _password_sign_in(body.get("username"), body.get("password"))
    if user is None:
        return jsonify({"auth-token": "", "access": -1})
    return jsonify({"auth-token": players.issue_token(get_db(), _secret(), user.id), "access": 1})


@bp.post("/heresphere")
def heresphere_library() -> Response:
    try:
        body = _body()
    except InvalidInput as exc:
        return _bad(exc, {"access": 0, "library": []})
    user, allowed, _ = _hs_user(body)
    if user is None:
        return jsonify(access=allowed, library=[])
    video = _url_maker("vr_api.heresphere_video")
    library = [
        {"name": section.name, "list": [video(e.media_hash) for e in section.entries]}
        for section in catalog.sections(get_db(), user.id)
    ]
    return jsonify(access=1, library=library)


WRITES = ("rating", "isFavorite", "tags")


@bp.post("/heresphere/<media_hash>")
def heresphere_video(media_hash: str) -> Response:
    try:
        body = _body()
    except InvalidInput as exc:
        return _bad(exc, {"access": 0})
    user, allowed, via = _hs_user(body)
    if user is None:
        return jsonify(access=allowed)
    db, cache = get_db(), _cache()
    try:
        v = catalog.video(db, cache, media_hash, user.id)
    except NotFound as exc:
        log.info("HereSphere video %s: %s", media_hash[:40], exc)
        response = jsonify(access=1, error="no such video")
        response.status_code = 404
        return response
    if body.get("deleteFile"):
        log.warning("HereSphere asked to delete %s for user %d: refused (the server never "
                    "changes the media folders)", media_hash, user.id)  # fmt: skip
        response = jsonify(access=1, error="deleteFile is never honoured: this server does "
                           "not change your media folders; delete the file on the disk")  # fmt: skip
        response.status_code = 403
        return response
    enabled = players.write_back_enabled(db, settings().vr_write_back)
    if any(k in body for k in WRITES):
        if via == "session":  # a browser's cookie: a write needs CSRF, which players lack
            log.info("HereSphere write-back with a session cookie refused (user %d)", user.id)
        else:
            try:
                done = players.write_back(
                    db, cache, user, v.item.media_id, media_hash, body, enabled
                )
            except InvalidInput as exc:
                return _bad(exc, {"access": 1})
            if done.changed:
                v = catalog.video(db, cache, media_hash, user.id)
    return jsonify(_hs_video(v, user, enabled, body.get("needsMediaSource", True) is not False))


def _hs_video(
    v: catalog.Video, user: users.User, enabled: tuple[str, ...], media: bool
) -> dict[str, Any]:
    item, uid = v.item, user.id
    duration_ms = v.duration * 1000.0
    out: dict[str, Any] = {
        "access": 1,
        "title": v.title,
        "description": v.description,
        "thumbnailImage": _signed("media.thumb", uid, item.media_hash),
    }
    preview = _clip_url(uid, item.media_hash)
    if preview:
        out["thumbnailVideo"] = preview
    if v.date_released:
        out["dateReleased"] = v.date_released
    out["dateAdded"] = v.date_added
    out["duration"] = duration_ms
    out["rating"] = float(v.rating or 0)
    out["isFavorite"] = v.is_favorite
    out.update(projection.heresphere_fields(v.vr))
    out["eventServer"] = _signed("vr_api.heresphere_event", uid, item.media_hash)
    out["subtitles"] = [
        {
            "name": s.name,
            "language": s.language,
            "url": _signed("media.subtitles.vtt", uid, item.media_hash, key=s.key),
        }
        for s in v.subtitles
    ]
    tag_list = [
        {"name": f"Tag:{t}", "start": 0.0, "end": 0.0, "track": 0, "rating": 0.0} for t in v.tags
    ]
    marks = sorted(v.markers, key=lambda m: m.seconds)
    for i, m in enumerate(marks):
        end = marks[i + 1].seconds if i + 1 < len(marks) else v.duration
        tag_list.append(
            {
                "name": f"Marker:{m.label}",
                "start": m.seconds * 1000.0,
                "end": max(end, m.seconds) * 1000.0,
                "track": 1,
                "rating": 0.0,
            }
        )
    out["tags"] = tag_list
    if media:
        src = _sources(v, uid)
        original = {"name": "Original", "sources": [src["original"]]}
        hls = {"name": "Transcoded (HLS)", "sources": [src["hls"]]}
        out["media"] = [original, hls] if v.plays_directly else [hls, original]
    else:
        out["media"] = []
    out["writeFavorite"] = "favorite" in enabled
    out["writeRating"] = "rating" in enabled
    out["writeTags"] = "tags" in enabled and user.may_edit_metadata
    return out


@bp.post("/heresphere/event/<media_hash>")
def heresphere_event(media_hash: str) -> Response:
    """Turn a playback event into the user's resume position and play history."""
    db = get_db()
    user = None
    token = request.headers.get("auth-token")
    if token:
        user = players.check_token(db, _secret(), token)
    elif "s" in request.args:
        params = {k: request.args[k] for k in ("s", "u", "e") if k in request.args}
        uid = apitokens.check_media_signature(_secret(), media_hash, params)
        found = users.get(db, uid) if uid else None
        user = found if found is not None and not found.disabled else None
    elif g.get("user") is not None and g.user.via == "token":
        user = g.user
    if user is None:
        log.info("HereSphere event for %s refused: not signed in", media_hash[:40])
        return jsonify(access=0)
    try:
        event = players.parse_event(_body())
        players.record_event(db, user.id, media_hash, event)
    except InvalidInput as exc:
        return _bad(exc, {"access": 1})
    except NotFound:
        response = jsonify(access=1, error="no such video")
        response.status_code = 404
        return response
    return jsonify(access=1)


# --- the admin's switches ---------------------------------------------------------------------

admin_bp = Blueprint("admin_vr_players", __name__)  # "admin…": admins only (blueprints/access.py)


@admin_bp.post("/admin/vr-players/write-back")
def write_back_switches() -> Response:
    """Switch one kind of write-back (form fields `name`, `on` 1/0) on or off."""
    name, on = request.form.get("name", ""), request.form.get("on", "")
    if on not in ("0", "1"):
        raise InvalidInput("on: expected 1 or 0")
    players.set_write_back(get_db(), name, on == "1", g.user.id)
    flash(f"DeoVR and HereSphere may {'now' if on == '1' else 'no longer'} change {name}.")
    return redirect(url_for("account.index"), 303)


@bp.app_template_global()
def vr_write_back_switches() -> list[tuple[str, str, bool, bool]]:
    """Return (name, label, on, set by LVS_VR_WRITE_BACK) for the admin's form."""
    cfg = settings().vr_write_back
    db_on = set(players.write_back_enabled(get_db()))
    labels = {"rating": "Ratings", "favorite": "Favourites", "tags": "Tags (shared)"}
    return [(k, labels[k], k in db_on or k in cfg, k in cfg) for k in players.WRITE_BACK]


# --- setup help -------------------------------------------------------------------------------


@bp.app_template_global()
def vr_player_addresses() -> dict[str, str]:
    """Return the addresses to type into DeoVR and HereSphere: this machine's name, https when
    the server serves it."""
    cfg = settings()
    scheme = "https" if cfg.tls != "off" or request.is_secure else "http"
    name = socket.gethostname().split(".")[0].lower() + ".local"
    default = 443 if scheme == "https" else 80
    port = "" if cfg.port == default else f":{cfg.port}"
    base = f"{scheme}://{name}{port}"
    return {
        "scheme": scheme,
        "deovr": f"{base}/deovr",
        "heresphere": f"{base}/heresphere",
        "write_back": ", ".join(players.write_back_enabled(get_db(), cfg.vr_write_back)),
    }
