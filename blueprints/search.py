"""/search: full-text search with the browse filters; the results region updates as you type."""

from __future__ import annotations

from flask import Blueprint, Response, request

from blueprints.common import get_db, render, settings, user_id
from services.browse import browse
from services.errors import InvalidInput
from services.organize import duplicates, history, search, suggest

bp = Blueprint("search", __name__)

REGIONS = {"results": "search/_results.html", "more": "search/_more.html"}
SORT_CHOICES = ("relevance", *browse.SORTS)


@bp.get("/search")
def page() -> Response:
    text = request.args.get("q", "")
    sort = request.args.get("sort") or "relevance"
    if sort not in SORT_CHOICES:
        raise InvalidInput(f"sort: {sort[:40]!r} is not one of {', '.join(SORT_CHOICES)}")
    args = request.args.to_dict()
    args["sort"] = "name" if sort == "relevance" else sort  # the browse sorts' default orders
    query = browse.parse_query(args)
    after = browse.parse_cursor(request.args.get("after"))
    db = get_db()
    results = search.search(db, text, query, user_id=user_id(), sort=sort, after=after)
    nothing = results.terms and not results.cards and after is None
    return render(
        "search/page.html",
        REGIONS,
        text=text,
        query=query,
        sort=sort,
        results=results,
        sorts=SORT_CHOICES,
        codecs=browse.CODECS,
        highlight=search.highlight,
        correction=suggest.did_you_mean(db, text) if nothing else None,
    )


@bp.get("/search/suggest")
def suggest_box() -> Response:
    """The header box's live suggestions: a few items, tags and folders, or "did you mean"."""
    found = suggest.suggestions(
        get_db(),
        request.args.get("q", ""),
        user_id=user_id(),
        roots=list(settings().media_dirs),
    )
    return render("search/_suggest.html", found=found)


@bp.get("/duplicates")
def duplicates_page() -> Response:
    return render("search/duplicates.html", found=duplicates.find(get_db(), user_id=user_id()))


@bp.get("/history")
def history_page() -> Response:
    return render("search/history.html", played=history.recent(get_db(), user_id=user_id()))
