"""Static files under a versioned path, so whole module graphs are cached for a year.

`asset("js/app.js")` is /static/v/<version>/js/app.js: the version is a digest of every static
file (app._asset_version), so a new release has new URLs. It is a path segment, not a query, so
that the ES modules app.js imports ("./player.js") resolve under the same versioned folder and
are cached as long as it is (a query would be dropped from relative imports, leaving them
unversioned). A versioned file is `immutable` for a year: a repeat visit asks the server nothing.
A URL with an older version (a page loaded before an upgrade) gets today's file, revalidated
each time; so does plain /static/<file>.

The style sheets every page uses are one file, css/page.css, joined here (no build step): one
render-blocking request instead of five, which on a busy server was what held the first paint
back (bench B16). Each part keeps its own file and comments saying where it came from.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory

bp = Blueprint("assets", __name__)
YEAR = 365 * 24 * 3600
# Joined in this order (the cascade is the order the <link>s had in base.html).
BUNDLES = {
    "css/page.css": (
        "css/app.css",
        "css/ui.css",
        "css/vr.css",
        "css/player-menu.css",
        "css/live.css",
        "css/card-clips.css",
    )
}


@cache
def _bundle(static: str, name: str, version: str) -> tuple[bytes, str]:
    """Return the joined text of bundle `name` and its ETag (per release: `version` keys it)."""
    parts = [f"/* {part} */\n" + (Path(static) / part).read_text() for part in BUNDLES[name]]
    body = "\n".join(parts).encode()
    return body, hashlib.sha256(body).hexdigest()[:16]


@bp.get("/static/v/<version>/<path:filename>")
def file(version: str, filename: str) -> Response:
    current = version == current_app.config["ASSET_VERSION"]
    folder = current_app.static_folder or "static"
    if filename in BUNDLES:
        body, etag = _bundle(folder, filename, current_app.config["ASSET_VERSION"])
        response = Response(body, mimetype="text/css")
        response.set_etag(etag)
        response.make_conditional(request)
    else:
        response = send_from_directory(folder, filename, max_age=YEAR if current else 0)
    if current:
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def install(app: Flask) -> None:
    """Serve versioned static files; unversioned /static/ files are revalidated on each use."""
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 0
    app.register_blueprint(bp)
