"""Playing what a browser cannot play as it is: the decision and HLS (SPEC: /media/<hash>/hls/…).

    GET /media/<h>/play.json?caps=…&q=…&audio=…&burn=…&nodirect=1   the decision, as JSON
    GET /media/<h>/hls/master.m3u8?(the same choices)                 starts or joins a session
    GET /media/<h>/hls/<session>/stream.m3u8                          the VOD media playlist
    GET /media/<h>/hls/<session>/<n>.ts                               a complete segment
    POST /media/<h>/hls/<session>/stop                                the player left

A child of the media blueprint (endpoints `media.hls.*`): the media hash is checked first, a
signed media URL opens these as it opens the file, and storage trouble answers 503. Any
parameter not listed is a 400, so nothing unexpected reaches a decision or an argv.

A segment already complete in the rendition's cache (a second viewer, a seek back, a replay)
is answered in front of Flask by the lean path that serves the originals
(blueprints/media_direct.py, `add_route`): the same sign-in, Host check and RFC 9110 answer,
at Range-serving speed (bench B9's cached-segment row). Anything else — a segment still to be
made, an unknown parameter, a session of another user or item — the opener hands to Flask.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState

from blueprints import access, media, media_direct
from blueprints.common import GUEST_USER, get_db, settings, user_id
from blueprints.media import answer_file
from services.compute.settings import ComputeSettings
from services.errors import InvalidInput, NotFound, TranscodeFailed, Unavailable
from services.playback import decision, encoders, hls, media_files, playindex, ranges, source
from services.playback.transcoder import LocalTranscoder, Transcoder

log = logging.getLogger(__name__)

bp = Blueprint("hls", __name__)
# A child of the media blueprint, once per process (a blueprint takes children only before it
# is first registered with an app, and tests make many apps).
media.bp.register_blueprint(bp)
SEGMENT_PATH = (r"/media/(?P<media_hash>[0-9a-f]{16})/hls/(?P<session>[0-9a-f]{16})"
                rf"/(?P<n>0|[1-9][0-9]{{0,5}})\.{hls.SEGMENT_EXT}")  # fmt: skip

CHOICES = frozenset({"caps", "q", "audio", "burn", "nodirect"})
SIGNED = frozenset({"u", "e", "s"})  # a signed media URL's parameters, passed on to segments
SEGMENT_CACHE = "private, max-age=3600"  # a segment never changes under its name
SEGMENT_TYPE = "video/mp2t"
PLAYLIST = "application/vnd.apple.mpegurl"
_lock = threading.Lock()


def transcoder() -> Transcoder:
    """Return this process's transcoder, made on first use."""
    found = current_app.extensions.get("transcoder")
    if found is None:
        with _lock:
            found = current_app.extensions.get("transcoder")
            if found is None:
                cfg = settings()
                choice = encoders.detect()
                found = LocalTranscoder(
                    cfg.data_dir / "hls",
                    max_encoders=cfg.effective_transcode_max(),
                    cache_bytes=int(cfg.transcode_cache_gb * 1e9),
                    idle=cfg.transcode_idle,
                    encoder=choice.name,
                    device=choice.device,
                )
                if cfg.redis_url:  # workers on other machines (issue 18)
                    from services.playback.remote import RemoteTranscoder

                    found = RemoteTranscoder(found, ComputeSettings.of(cfg), cfg.media_dirs)
                current_app.extensions["transcoder"] = found
    return found


def _only(allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.args) - allowed - SIGNED)
    if unknown:
        raise InvalidInput(f"unknown parameter {unknown[0][:40]!r}")


def _signed_query() -> str:
    return "&".join(f"{k}={request.args[k]}" for k in ("u", "e", "s") if k in request.args)


def _load(media_hash: str) -> tuple[source.Source, IO[bytes]]:
    """Open the item's trusted file and read its Source (the caller closes the file)."""
    media = media_files.open_media(get_db(), media_hash, settings().media_dirs)
    try:
        st = media.stat
        src = source.load(get_db(), media_hash, media.file.fileno(), (st.st_size, st.st_mtime_ns),
                          _index())  # fmt: skip
    except BaseException:
        media.file.close()
        raise
    return src, media.file


def _index() -> Path:
    return settings().data_dir / "hls" / "index"


def _decide(media_hash: str, *, allow_direct: bool, warm: bool = False,
            ) -> tuple[source.Source, decision.Decision]:  # fmt: skip
    src, f = _load(media_hash)
    try:
        made = _decision(src, allow_direct)
        if warm and made.output is not None and made.output.video == "copy":
            _find_cut_points(src, made.output, f)
    finally:
        f.close()
    return src, made


def _decision(src: source.Source, allow_direct: bool) -> decision.Decision:
    caps = decision.parse_capabilities(request.args.get("caps"))
    choice = decision.parse_choice(request.args, src)
    max_height = 0
    if choice.quality == "max":
        max_height = encoders.max_realtime_height(src.width, src.height, src.fps)
    return decision.decide(src, caps, choice, max_height=max_height,
                           allow_direct=allow_direct)  # fmt: skip


def _find_cut_points(src: source.Source, output: decision.Output, f: IO[bytes]) -> None:
    """Read a remux's cut points in the background unless the play index has them, so the
    master playlist that follows finds them ready (B8: ffmpeg starts sooner)."""
    index = _index()
    key = f"{src.video_index}-{output.segment:g}"
    if key in playindex.read(index, src.media_hash, src.version).get("keyframes", {}):
        return
    fd = os.dup(f.fileno())  # the thread's own descriptor of the trusted open file

    def run() -> None:
        try:
            hls.boundaries(src, output, fd, index)
        except Exception:
            log.exception("media %s: cut points not read", src.media_hash)
        finally:
            os.close(fd)

    threading.Thread(target=run, name="hls-cut-points", daemon=True).start()


@bp.get("/<media_hash>/play.json")
def play(media_hash: str) -> Response:
    """Say how this browser plays the video: direct, remux or transcode, why, and the URL."""
    _only(CHOICES)
    src, made = _decide(media_hash, allow_direct=True, warm=True)
    choices = {k: request.args[k] for k in CHOICES | SIGNED if request.args.get(k)}
    if made.method == decision.Method.DIRECT:
        url = url_for(
            "media.file", media_hash=media_hash, **{k: choices[k] for k in SIGNED & set(choices)}
        )
    else:
        url = url_for("media.hls.master", media_hash=media_hash, **choices)
    return jsonify(
        method=made.method.value,
        reasons=[r.value for r in made.reasons],
        words=made.words,
        url=url,
        qualities=list(made.qualities),
        quality=request.args.get("q") or "auto",
        height=made.output.height if made.output and made.output.height else src.short_side,
        duration=src.duration,
        has_video=src.video_index is not None,
        signature=decision.signature(src),
        audio=[
            {
                "index": t.index,
                "codec": t.codec,
                "channels": t.channels,
                "language": t.language,
                "title": t.title,
                "default": t.is_default,
            }
            for t in src.audio
        ],  # fmt: skip
        subtitles=[
            {"index": t.index, "codec": t.codec, "language": t.language, "title": t.title}
            for t in src.subtitles
        ],  # fmt: skip
    )


@bp.get("/<media_hash>/hls/master.m3u8")
def master(media_hash: str) -> Response:
    """Start (or join) this viewer's session for the chosen rendition; name its playlist."""
    _only(CHOICES)
    src, made = _decide(media_hash, allow_direct=False)
    assert made.output is not None
    count = len(_bounds(src, made.output, media_hash))
    sid = transcoder().open(user_id(), media_hash, made.output, method=made.method.value,
                            words=made.words, count=count, duration=src.duration)  # fmt: skip
    variant = f"{sid}/stream.m3u8" + (f"?{_signed_query()}" if _signed_query() else "")
    body = hls.master_playlist(src, made.output, variant)
    response = Response(body, mimetype=PLAYLIST)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-LVS-Method"] = made.method.value
    response.headers["X-LVS-Reasons"] = ",".join(r.value for r in made.reasons)
    return response


def _bounds(src: source.Source, output: decision.Output, media_hash: str) -> list[float]:
    if output.video != "copy":
        return hls.boundaries(src, output, -1, None)
    _, f = _load(media_hash)
    try:
        return hls.boundaries(src, output, f.fileno(), _index())
    finally:
        f.close()


@bp.get("/<media_hash>/hls/<session_id>/stream.m3u8")
def stream(media_hash: str, session_id: str) -> Response:
    """Send the session's VOD media playlist: every segment, from the duration."""
    _only(frozenset())
    s = transcoder().session(session_id, user_id())
    if s.media_hash != media_hash:
        raise NotFound("no such playback session")
    src, f = _load(media_hash)
    f.close()
    body = hls.media_playlist(_bounds(src, s.out, media_hash), s.duration, _signed_query())
    response = Response(body, mimetype=PLAYLIST)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<media_hash>/hls/<session_id>/<name>")
def segment(media_hash: str, session_id: str, name: str) -> Response:
    """Send a complete segment, starting or moving the encoder when it is not made yet."""
    _only(frozenset())
    stem, dot, ext = name.partition(".")
    digits = stem.isascii() and stem.isdigit()  # not '²': isdigit, then int() raises
    if ext != hls.SEGMENT_EXT or not digits or len(stem) > 6 or stem != str(int(stem)):
        raise NotFound("no such segment")
    tc = transcoder()
    s = tc.session(session_id, user_id())
    if s.media_hash != media_hash:
        raise NotFound("no such playback session")
    if hasattr(tc, "placements"):  # a RemoteTranscoder: the segment may come from a worker
        got = tc.segment(session_id, user_id(), int(stem), lambda: _load(media_hash),
                         range_header=request.headers.get("Range"))  # fmt: skip
        if not isinstance(got, (Path, int)):  # int: a descriptor of it in the shared folder
            return _proxied(got)
        path = got
    else:
        path = tc.segment(session_id, user_id(), int(stem), lambda: _load(media_hash))
    try:
        found = _open_segment(path, s.key, int(stem))
    except FileNotFoundError:  # removed since it was found (evicted, or its worker's session ended)
        raise Unavailable("the segment is not ready yet", 1) from None
    return answer_file(request.environ, found.file, found.size, found.mtime, found.etag,
                       found.content_type, found.cache_control)  # fmt: skip


def _open_segment(path: Path | int, key: str, n: int) -> media.Original:
    f = open(path, "rb", buffering=0)  # an int: a descriptor opened safely (remote.py), now f's
    st = os.fstat(f.fileno())
    return media.Original(f, st.st_size, int(st.st_mtime), _etag(key, n, st), SEGMENT_TYPE, None,
                          SEGMENT_CACHE)  # fmt: skip


def _etag(key: str, n: int, st: os.stat_result) -> str:
    return ranges.make_etag(f"{key}-{n}", st.st_size, st.st_mtime_ns)


def _find_cached(
    tc: Transcoder | None,
    session_id: str,
    n: int,
    media_hash: str,
    args: dict[str, str],
    user: access.Account | None,
) -> tuple[str, Path | int] | None:
    """Return the rendition's key and the path of segment n (or an open descriptor of it in a
    shared folder: the caller's) if the rendition's cache holds it complete (the request
    recorded); None: Flask answers (a segment still to be made, an
    unknown parameter, a session not this viewer's or item's, a transcoder this process has
    not made)."""
    if tc is None or (args and set(args) - SIGNED):
        return None
    uid = user.id if user is not None else GUEST_USER
    try:
        s, path = tc.cached(session_id, uid, n, media_hash)
    except NotFound:
        return None  # another user's or item's session, an ended one: Flask's page says so
    return (s.key, path) if path is not None else None


def _cached_segment(
    req: media_direct.DirectRequest, tc: Transcoder | None
) -> media.Original | None:
    """Open a segment the rendition's cache holds, for the lean path (see _find_cached)."""
    n = int(req.match["n"])
    found = _find_cached(tc, req.match["session"], n, req.media_hash, req.args, req.user)
    if found is None:
        return None
    try:
        return _open_segment(found[1], found[0], n)
    except FileNotFoundError:
        return None  # gone since it was found: Flask makes or fetches it


def _cached_segment_fast(
    tc: Transcoder | None,
    match: re.Match[str],
    media_hash: str,
    args: dict[str, str],
    user: access.Account | None,
) -> media_direct.Opened | None:
    """The same for the lean path's one-step answer: a bare descriptor (no io.FileIO), or None
    (nothing open) when anything is unusual — _cached_segment then decides."""
    n = int(match["n"])
    found = _find_cached(tc, match["session"], n, media_hash, args, user)
    if found is None:
        return None
    key, path = found
    try:
        fd = path if isinstance(path, int) else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # evicted meanwhile: the general way finds it gone
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    return fd, st, _etag(key, n, st), SEGMENT_TYPE, SEGMENT_CACHE, None


def _install_direct(state: BlueprintSetupState) -> None:
    app = state.app

    def fast(db: Any, memo: Any, match: re.Match[str], media_hash: str, args: dict[str, str],
             user: access.Account | None) -> media_direct.Opened | None:  # fmt: skip
        return _cached_segment_fast(app.extensions.get("transcoder"), match, media_hash, args, user)

    media_direct.add_route(app, SEGMENT_PATH, "media.hls.segment",
                           lambda req: _cached_segment(req, app.extensions.get("transcoder")),
                           fast)  # fmt: skip


bp.record_once(_install_direct)


def _proxied(up: Any) -> Response:
    """Stream a worker's answer (services/playback/remote.py Upstream) through, unbuffered:
    its body, status and range headers, never its Content-Type (a segment's is fixed)."""
    if up.refused:  # not a segment's answer (remote.py logged it)
        up.close()
        raise TranscodeFailed("the worker's answer was not a segment")
    response = Response(up.chunks(), status=up.status, headers=up.headers,
                        mimetype=SEGMENT_TYPE, direct_passthrough=True)  # fmt: skip
    if up.status < 300:
        response.headers["Cache-Control"] = SEGMENT_CACHE
    return response


@bp.post("/<media_hash>/hls/<session_id>/stop")
def stop(media_hash: str, session_id: str) -> Response:
    """End the viewer's session at once (the player left or switched to another quality)."""
    _only(frozenset())
    transcoder().stop(session_id, user_id())
    return Response(status=204)
