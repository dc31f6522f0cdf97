"""Subtitle and audio tracks: the player's list, each text track as WebVTT, the preferences.

The track routes live under the media blueprint (`/media/<media_hash>/subtitles…`, nested), so
they are open to whoever may open the file: a session, an API token, or the file's signed URL.

- `GET /media/<media_hash>/subtitles.json`: the tracks (subtitles with language, title,
  forced/SDH, text or picture, and the URL of each text track; audio streams), the person's
  preferences and the tracks they pick.
- `GET /media/<media_hash>/subtitles/<key>.vtt`: one text track as `text/vtt`; key `e<stream>`
  (embedded) or `s<id>` (sidecar). An embedded track whose extraction is under way answers
  with what is extracted so far and `X-Subtitles-Complete: 0`; with `?partial=1` at once,
  otherwise after waiting up to 20 s for the end.
- `POST /playback/prefs`: subtitles_on (0/1), subtitle_language, audio_language.
"""

from __future__ import annotations

import logging
import os
import re

from flask import Blueprint, Response, jsonify, request, url_for

from blueprints.common import get_db, settings, user_id
from blueprints.media import bp as media_bp
from services.browse import browse
from services.errors import NotFound, Unavailable
from services.playback import media_files
from services.playback.subtitles import extract, prefs, tracks
from services.playback.subtitles.convert import SubtitleError

log = logging.getLogger(__name__)

bp = Blueprint("subtitles", __name__)
prefs_bp = Blueprint("playback_prefs", __name__)
# Nested in the media blueprint, once, at import (before any app registers it): its endpoints are
# media.subtitles.*, under /media, with media's hash check, error answers and signed-URL access.
media_bp.register_blueprint(bp)

KEY = re.compile(r"^([es])(\d{1,9})$")
SIGNED = ("u", "e", "s")
FULL_WAIT = 20.0  # seconds a request without ?partial=1 waits for an extraction to end


@bp.app_template_global()
def subtitle_filters() -> list[tuple[str, str]]:
    """Return the "has subtitles in" filter's choices (value, label) for folder and search pages."""
    return [(tag, label) for tag, (label, _) in browse.SUBTITLE_LANGUAGES.items()]


def _signed_args() -> dict[str, str]:
    """Carry a signed URL's parameters into the URLs we hand out (players without cookies)."""
    return {k: request.args[k] for k in SIGNED if k in request.args}


def track_dict(track: tracks.SubtitleTrack, media_hash: str) -> dict:
    url = None
    if track.kind == "text" and track.usable:
        url = url_for("media.subtitles.vtt", media_hash=media_hash, key=track.key, **_signed_args())
    return {
        "key": track.key,
        "label": track.label,
        "language": track.language,
        "language_name": track.language_name,
        "title": track.title,
        "codec": track.codec,
        "kind": track.kind,
        "source": track.source,
        "forced": track.forced,
        "sdh": track.sdh,
        "default": track.default,
        "status": track.status,
        "reason": track.reason,
        "stream_index": track.stream_index,
        "url": url,
    }


@bp.get("/<media_hash>/subtitles.json")
def listing(media_hash: str) -> Response:
    """List the video's tracks, the person's preferences and the tracks they pick."""
    db = get_db()
    found = tracks.list_tracks(db, media_hash)
    mine = prefs.get(db, user_id())
    choice = prefs.choose(found, mine, request.accept_languages.best)
    body = {
        "subtitles": [track_dict(t, media_hash) for t in found.subtitles],
        "audio": [
            {
                "index": a.index,
                "label": a.label,
                "language": a.language,
                "codec": a.codec,
                "channels": a.channels,
                "title": a.title,
                "default": a.default,
            }
            for a in found.audio
        ],
        "prefs": {
            "subtitles_on": mine.subtitles_on,
            "subtitle_language": mine.subtitle_language,
            "audio_language": mine.audio_language,
        },
        "choice": {
            "subtitle": choice.subtitle.key if choice.subtitle else None,
            "audio": choice.audio.index if choice.audio else None,
        },
        "prefs_url": url_for("playback_prefs.save"),
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/<media_hash>/subtitles/<key>.vtt")
def vtt(media_hash: str, key: str) -> Response:
    """Send one text track as WebVTT."""
    m = KEY.match(key)
    if not m:
        raise NotFound("no such subtitle track")
    db = get_db()
    try:
        if m[1] == "s":
            text, etag = tracks.sidecar_vtt(db, media_hash, int(m[2]))
            return _vtt_answer(text, etag=etag)
        return _embedded(db, media_hash, int(m[2]))
    except SubtitleError as exc:
        log.warning("subtitle track %s of %s: %s", key, media_hash, exc)
        return Response(f"this subtitle track cannot be shown: {exc}\n", 422, mimetype="text/plain")


def _embedded(db, media_hash: str, index: int) -> Response:  # type: ignore[no-untyped-def]
    found = tracks.list_tracks(db, media_hash, check=False)
    track = next((t for t in found.subtitles if t.stream_index == index), None)
    if track is None:
        raise NotFound("no such subtitle track")
    if track.kind != "text" or not track.usable:
        raise SubtitleError(track.reason or "a picture-based track: it can only be burned in")
    text_streams = [
        (t.stream_index, t.codec)
        for t in found.subtitles
        if t.source == "embedded" and t.kind == "text" and t.usable
    ]
    cfg = settings()
    media = media_files.open_media(db, media_hash, cfg.media_dirs)
    try:
        source = os.readlink(f"/proc/self/fd/{media.file.fileno()}").encode(
            "utf-8", "surrogateescape"
        )
    finally:
        media.file.close()
    partial = request.args.get("partial") == "1"
    try:
        status = extract.ensure(
            cfg.data_dir,
            media_hash,
            source,
            text_streams,  # type: ignore[arg-type]
            wait=0.3 if partial else FULL_WAIT,
        )
    except FileNotFoundError:
        raise NotFound("the file is gone") from None
    except OSError as exc:
        raise Unavailable(f"cannot read the file: {exc.strerror or exc}") from None
    folder = extract.cache_dir(cfg.data_dir, media_hash)
    text, complete = extract.read_track(folder, index, track.codec, status)
    if complete:
        return _vtt_answer(text, etag=f'"e{index}-{media.stat.st_size}-{media.stat.st_mtime_ns}"')
    response = _vtt_answer(text, etag=None)
    response.headers["X-Subtitles-Complete"] = "0"
    return response


def _vtt_answer(text: str, *, etag: str | None) -> Response:
    if etag and request.headers.get("If-None-Match") == etag:
        response = Response(status=304)
    else:
        response = Response(text, mimetype="text/vtt")
        response.charset = "utf-8"
    response.headers["Cache-Control"] = "private, no-cache" if etag else "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Subtitles-Complete"] = "1"
    if etag:
        response.headers["ETag"] = etag
    return response


@prefs_bp.post("/playback/prefs")
def save() -> Response:
    """Save the person's subtitle/audio preferences (from the player's menu)."""
    form = request.form
    mine = prefs.save(
        get_db(),
        user_id(),
        subtitles_on=form.get("subtitles_on"),
        subtitle_language=form.get("subtitle_language"),
        audio_language=form.get("audio_language"),
    )
    return jsonify(
        {
            "subtitles_on": mine.subtitles_on,
            "subtitle_language": mine.subtitle_language,
            "audio_language": mine.audio_language,
        }
    )
