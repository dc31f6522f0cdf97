"""What every page blueprint shares: the request's database, the settings, the user, render()."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from flask import Flask, Response, current_app, g, make_response, render_template, request, url_for
from markupsafe import Markup, escape
from sqlite_utils import Database

from config import Settings
from services import db as dbmod
from services import metrics

VARY = "HX-Request, HX-Target"


def settings() -> Settings:
    """Return the app's settings."""
    return current_app.config["SETTINGS"]


_local = threading.local()
KEPT_CONNECTIONS = 4  # per thread: one per database in use (tests run several apps in one thread)


def get_db() -> Database:
    """Return this thread's database connection for the request, opened on first use."""
    db = g.db = thread_db(settings().db_path)
    return db


def thread_db(path: Path) -> Database:
    """Return this thread's connection to the database at `path`, opened on first use.

    A connection belongs to one thread. It is kept for the thread's next requests rather than
    opened per request: opening one (file, schema, pragmas) costs ~0.5 ms, a third of what a
    60-card page costs in all (bench B6). Server threads live as long as their worker.
    """
    conns: OrderedDict[str, Database] = _local.__dict__.setdefault("conns", OrderedDict())
    key = str(path)  # hashing a Path costs ~1 µs a time, and every request asks
    db = conns.get(key)
    if db is None:
        # No mmap_size: it saves ~0.1 ms a page, but every thread's connection maps the file
        # again and each mapping counts in RSS (bench M: 524 MB instead of 163 MB).
        db = conns[key] = dbmod.connect(path)
        db.conn.set_trace_callback(metrics.count_query)  # SQL statements per request
        while len(conns) > KEPT_CONNECTIONS:
            conns.popitem(last=False)[1].close()
    conns.move_to_end(key)
    return db


def close_db(exc: BaseException | None = None) -> None:
    """End the request's use of the connection: nothing may stay open in a transaction."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.rollback()


GUEST_USER = 0  # no such row: a guest (LVS_GUEST=on) has no history and writes nothing


def user_id() -> int:
    """Return the signed-in user's id (blueprints/access.py put the user in `g`)."""
    user = g.get("user")
    return user.id if user is not None else GUEST_USER


def fragment_target(regions: Mapping[str, str]) -> str | None:
    """Return the partial template htmx asked for, or None when the whole page is wanted.

    A boosted navigation and a history restore want the whole page even though htmx sends
    HX-Request with them; only a request aimed at a known region gets the region.
    """
    headers = request.headers
    if headers.get("HX-Request") != "true":
        return None
    if headers.get("HX-Boosted") == "true" or headers.get("HX-History-Restore-Request") == "true":
        return None
    return regions.get(headers.get("HX-Target", ""))


def render(
    template: str,
    regions: Mapping[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    """Render the page, or only the region htmx targets; always `Vary: HX-Request, HX-Target`.

    `regions` maps a region's element id to its partial, `templates/<area>/_<region>.html`.
    """
    partial = fragment_target(regions or {})
    response = make_response(render_template(partial or template, **context), status)
    response.headers["Vary"] = VARY
    return response


def clock(seconds: float | None) -> str:
    """Return seconds as 1:02:03 or 2:03, as players show times."""
    if seconds is None:
        return ""
    total = int(seconds)
    h, m, s = total // 3600, total // 60 % 60, total % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def size(n: float | None) -> str:
    """Return a byte count as 12 MB or 1.4 GB (powers of 1024)."""
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit in ("B", "KB") or n >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def date(timestamp: float | None) -> str:
    """Return a Unix time as 2024-06-01."""
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


_PLACEHOLDER = "0123456789abcdef"


class CardUrl(NamedTuple):
    """A media URL split around its media_hash: before + hash + after."""

    before: Markup
    after: Markup


def card_url(endpoint: str) -> CardUrl:
    """Return url_for(endpoint, media_hash=…) split around the hash, for a list of cards.

    A page of 60 cards needs up to 180 media URLs; url_for costs ~15 µs each (a third of the
    page), a helper call per card ~5 µs. The template writes before, the hash, after.
    """
    before, after = url_for(endpoint, media_hash=_PLACEHOLDER).split(_PLACEHOLDER)
    return CardUrl(escape(before), escape(after))


def install_template_helpers(app: Flask, asset_version: str) -> None:
    """Add the template filters, `card_url()`, and `asset()`, which versions static URLs."""
    app.jinja_env.filters.update(clock=clock, size=size, date=date)
    app.jinja_env.globals["card_url"] = card_url

    built: dict[tuple[str, str], str] = {}

    def asset(filename: str) -> str:
        # The URL depends only on where the app is mounted: build it once per mount point.
        key = (request.script_root, filename)
        url = built.get(key)
        if url is None:
            url = built[key] = url_for("assets.file", version=asset_version, filename=filename)
        return url

    app.jinja_env.globals["asset"] = asset
