"""Tags: a page per tag, the tag list, suggestions, inline add/remove and bulk changes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from blueprints.common import get_db, render, settings, user_id
from services.browse import browse
from services.organize import metacache, tags

bp = Blueprint("tags", __name__)

TAG_REGIONS = {"tagged": "tags/_tagged.html", "more": "tags/_more.html"}


def cache() -> metacache.MetaCache:
    """Return this process's metadata cache for the app's database."""
    return metacache.cache_for(settings().db_path)


@bp.get("/tags")
def index() -> Response:
    return render("tags/index.html", tags=tags.all_tags(get_db()))


@bp.get("/tags/suggest")
def suggest() -> Response:
    """Return <option>s for the tag input's datalist."""
    found = tags.suggest(get_db(), request.args.get("tag", "") or request.args.get("q", ""))
    return render("tags/_tag_suggestions.html", found=found)


@bp.get("/tag/<path:name>")
def tag_page(name: str) -> Response:
    """Show a tag's media, newest first, a page at a time (infinite scroll, as folders do)."""
    db = get_db()
    after = browse.parse_cursor(request.args.get("after"))
    tag = tags.with_count(db, cache(), tags.find(db, name, count=False))
    page = tags.tagged_page(db, tag.id, user_id=user_id(), after=after)
    return render("tags/tag.html", TAG_REGIONS, tag=tag, page=page)


def _item_tags(media_hash: str, status: int = 200) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    return render(
        "watch/_tags.html",
        {"tags": "watch/_tags.html"},
        status,
        media_hash=media_hash,
        item_tags=tags.tags_of(db, cache(), mid),
    )


@bp.post("/watch/<media_hash>/tags")
def add(media_hash: str) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    tags.change(db, cache(), [mid], tags.split_names(request.form.get("tag", "")), add=True)
    return _item_tags(media_hash)


@bp.post("/watch/<media_hash>/tags/remove")
def remove(media_hash: str) -> Response:
    db = get_db()
    mid = tags.media_id(db, media_hash)
    tags.change(db, cache(), [mid], [tags.normalize(request.form.get("tag", ""))], add=False)
    return _item_tags(media_hash)


@bp.get("/watch/<media_hash>/tags.json")
def item_tags_json(media_hash: str) -> Response:
    """Return the item's tags: what the tag clipboard copies."""
    db = get_db()
    return jsonify(tags=list(tags.tags_of(db, cache(), tags.media_id(db, media_hash))))


@bp.post("/tags/bulk")
def bulk() -> Response:
    """Add or remove tags on a selection: form fields media (repeated), tag, action."""
    db = get_db()
    action = request.form.get("action", "add")
    if action not in ("add", "remove"):
        return jsonify(error="action must be add or remove"), 400
    names = tags.split_names(request.form.get("tag", ""))
    mids = tags.media_ids(db, request.form.getlist("media"))
    changed = tags.change(db, cache(), mids, names, add=action == "add")
    return jsonify(media=len(mids), changed=changed, tags=names)
