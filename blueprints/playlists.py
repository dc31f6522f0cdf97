"""Playlists: list and create, one playlist's page (reorder, remove), add a selection, play."""

from __future__ import annotations

import random
from collections.abc import Mapping

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from blueprints.common import get_db, render, user_id
from services.browse.cards import Card
from services.errors import InvalidInput, NotFound
from services.organize import playlists, tags

bp = Blueprint("playlists", __name__)

REGIONS = {"playlist-items": "playlists/_playlist_items.html"}


def _int(value: str | None, name: str) -> int:
    if not value or not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidInput(f"{name}: not a number")
    return int(value)


@bp.get("/playlists")
def index() -> Response:
    db, uid = get_db(), user_id()
    return render(
        "playlists/index.html",
        playlists=playlists.list_for(db, uid),
        covers=playlists.covers(db, uid),
    )


@bp.post("/playlists")
def create() -> Response:
    db = get_db()
    # Check the selection before the playlist exists: a refused selection leaves nothing behind.
    media = tags.media_ids(db, request.form.getlist("media"))
    found = playlists.create(db, user_id(), request.form.get("name", ""))
    if media:
        playlists.add(db, user_id(), found.id, media)
    if request.headers.get("Accept", "").startswith("application/json"):
        return jsonify(id=found.id, name=found.name, url=url_for(".show", playlist_id=found.id))
    return redirect(url_for(".show", playlist_id=found.id), 303)


@bp.get("/playlists.json")
def list_json() -> Response:
    found = playlists.list_for(get_db(), user_id())
    return jsonify(playlists=[{"id": p.id, "name": p.name, "count": p.count} for p in found])


@bp.get("/playlists/<int:playlist_id>")
def show(playlist_id: int) -> Response:
    db, uid = get_db(), user_id()
    return render(
        "playlists/show.html",
        REGIONS,
        playlist=playlists.get(db, uid, playlist_id),
        entries=playlists.entries(db, uid, playlist_id),
    )


@bp.post("/playlists/<int:playlist_id>/add")
def add(playlist_id: int) -> Response:
    db = get_db()
    n = playlists.add(db, user_id(), playlist_id, tags.media_ids(db, request.form.getlist("media")))
    return jsonify(added=n)


@bp.post("/playlists/<int:playlist_id>/items/<int:item_id>/<action>")
def item(playlist_id: int, item_id: int, action: str) -> Response:
    db, uid = get_db(), user_id()
    if action == "remove":
        playlists.remove(db, uid, playlist_id, item_id)
    elif action in ("up", "down"):
        playlists.move(db, uid, playlist_id, item_id, -1 if action == "up" else 1)
    else:
        raise InvalidInput("action: up, down or remove")
    return show(playlist_id)


@bp.post("/playlists/<int:playlist_id>/delete")
def delete(playlist_id: int) -> Response:
    playlists.delete(get_db(), user_id(), playlist_id)
    return redirect(url_for(".index"), 303)


@bp.get("/playlists/<int:playlist_id>/play")
def play(playlist_id: int) -> Response:
    """Start playing: the first item, in order or shuffled (the seed keeps the order stable)."""
    seed = random.randrange(1, 1 << 30) if request.args.get("shuffle") else 0
    order = playlists.play_order(get_db(), user_id(), playlist_id, shuffle=bool(seed), seed=seed)
    if not order:
        return redirect(url_for(".show", playlist_id=playlist_id), 303)
    return redirect(
        url_for("watch.page", media_hash=order[0], playlist=playlist_id, pos=0, seed=seed), 303
    )


def queue(args: Mapping[str, str], media_hash: str) -> dict | None:
    """Return the playlist context of a watch page opened from a playlist, else None.

    {name, pos, total, prev: Card|None, next: Card|None, prev_url, next_url}
    """
    if not args.get("playlist"):
        return None
    try:
        pid, pos = _int(args.get("playlist"), "playlist"), _int(args.get("pos", "0"), "pos")
        seed = _int(args.get("seed", "0"), "seed")
    except InvalidInput:
        return None
    db, uid = get_db(), user_id()
    try:
        entries = playlists.entries(db, uid, pid)
    except NotFound:
        return None  # a deleted or foreign playlist in an old link: just the video, no queue
    cards: list[Card] = [e.card for e in entries]
    if seed:
        random.Random(seed).shuffle(cards)
    if pos >= len(cards) or cards[pos].media_hash != media_hash:
        return None

    def at(i: int) -> tuple[Card | None, str | None]:
        if 0 <= i < len(cards):
            url = url_for(
                "watch.page", media_hash=cards[i].media_hash, playlist=pid, pos=i, seed=seed
            )
            return cards[i], url
        return None, None

    (prev, prev_url), (nxt, next_url) = at(pos - 1), at(pos + 1)
    return {
        "id": pid,
        "name": playlists.get(db, uid, pid).name,
        "pos": pos,
        "total": len(cards),
        "prev": prev,
        "next": nxt,
        "prev_url": prev_url,
        "next_url": next_url,
    }
