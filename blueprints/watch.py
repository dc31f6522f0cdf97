"""The watch page (player, details, up next, related) and the player's progress reports."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from blueprints import organize
from blueprints.common import get_db, render, settings, user_id
from services.browse import browse, details
from services.library import folders
from services.organize import watchstate
from services.playback import playability
from services.playback.subtitles import tracks as subtitle_tracks
from services.previews import sprites
from services.shows import upnext as upnext_svc

bp = Blueprint("watch", __name__)

REGIONS = {"related": "watch/_related.html"}


@bp.get("/watch/<media_hash>")
def page(media_hash: str) -> Response:
    db, uid, cfg = get_db(), user_id(), settings()
    item = details.item(db, media_hash)
    prev, upnext = browse.neighbours(db, item.folder_id, item.file_id, item.kind, user_id=uid)
    related = []
    if item.kind == "video":
        related = browse.related(
            db,
            media_hash=item.media_hash,
            title=item.series_title,
            folder_id=item.folder_id,
            file_id=item.file_id,
            user_id=uid,
        )
    extra = organize.watch_context(db, uid, item.media_id, item.media_hash, request.args)
    shown = upnext_svc.watch_info(db, item) if item.kind == "video" else None
    # An episode's neighbours held in several files open the version this browser plays best.
    episode_urls: dict[str, str] = {}
    if shown and shown.place and shown.place.kind == "episode":  # episode order, not file names
        prev, upnext = upnext_svc.neighbours(db, item.file_id, shown.place.show_id, uid)
        for name, card in (("prev", prev), ("next", upnext)):
            if card is not None and upnext_svc.versions_of(db, card.media_hash) > 1:
                episode_urls[name] = url_for("shows.play_version", media_hash=card.media_hash)
    if extra["queue"]:  # playing a playlist: its previous and next instead of the folder's
        prev, upnext = extra["queue"]["prev"], extra["queue"]["next"]
    if item.kind == "video":  # videos sharing tags first
        tagged = organize.tag_related(db, item.media_id, uid)
        seen = {c.media_hash for c in tagged}
        related = (tagged + [c for c in related if c.media_hash not in seen])[:12]
    return render(
        "watch/page.html",
        REGIONS,
        item=item,
        state=watchstate.get(db, uid, item.media_id),
        playable=playability.can_play(item, item.streams),
        prev=prev,
        upnext=upnext,
        episode_urls=episode_urls,
        related=related,
        folder_path=folders.folder_url_path(
            db, cfg.media_dirs, item.library_id, item.folder_rel_path
        ),
        has_sprites=sprites.sprite_paths(cfg.data_dir, item.media_hash)[1].is_file(),
        shown=shown,
        tracks=subtitle_tracks.list_tracks(db, media_hash) if item.kind == "video" else None,
        codec_names=subtitle_tracks.CODEC_NAMES,
        **extra,
    )


@bp.post("/watch/<media_hash>/progress")
def progress(media_hash: str) -> Response:
    """Record the player's position; 204, since the page has nothing to redraw."""
    form = request.form
    watchstate.record(
        get_db(),
        user_id(),
        media_hash,
        position=form.get("position"),
        duration=form.get("duration"),
        viewing=form.get("viewing"),
    )
    return Response(status=204)
