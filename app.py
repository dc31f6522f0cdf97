"""The application factory."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

import cli
from blueprints import (
    access,
    account,
    admin,
    admin_tags,
    admin_users,
    admin_vr,
    assets,
    auth,
    common,
    gallery,
    guards,
    health,
    hls,
    live,
    live_direct,
    markers,
    media,
    media_direct,
    playlists,
    ratings_api,
    search,
    shows,
    tags,
    ui,
    vr,
    vr_api,
    watch,
)
from blueprints import metrics as request_metrics
from blueprints import subtitles as subtitle_routes
from config import load_settings
from services import db as dbmod
from services.errors import (
    InvalidInput,
    LVSError,
    NotFound,
    ScanBusy,
    StorageError,
    TranscodeFailed,
    Unavailable,
)
from services.operate import logs
from services.playback import projection

log = logging.getLogger(__name__)

# Domain errors as HTTP: (status, title shown on the error page).
ERROR_STATUS: list[tuple[type[LVSError], int, str]] = [
    (NotFound, 404, "Not found"),
    (InvalidInput, 400, "Bad request"),
    (Unavailable, 503, "Storage not answering"),
    (StorageError, 503, "Storage problem"),
    (ScanBusy, 409, "Busy"),
    (TranscodeFailed, 502, "Cannot convert"),
]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, logging, database schema, commands.

    A wrong setting or an unusable data dir stops start-up with one line naming the problem.
    """
    try:
        settings = load_settings(test_config)
        if _running_worker():  # a worker on another machine has no database (issue 18)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            _prepare_db(settings)
    except LVSError as exc:
        raise SystemExit(f"Error: {exc}") from None
    logs.setup(settings.log_level, settings.log_format)
    app = Flask(__name__)
    # Before any rule is added: an <int:…> part must fit SQLite's INTEGER, or it is a 404.
    app.url_map.converters["int"] = SQLiteInt
    app.config["SETTINGS"] = settings
    request_metrics.install(app)  # first: request ids and timing wrap the other hooks
    cli.register(app)
    mine = (auth.bp, account.bp, admin_users.bp)
    assert hls.bp.name == "hls"  # nested in media.bp when imported: endpoints media.hls.*
    for blueprint in (gallery.bp, watch.bp, media.bp, health.bp, admin.bp, *mine):
        app.register_blueprint(blueprint)
    for blueprint in (search.bp, tags.bp, admin_tags.bp, ratings_api.bp, playlists.bp, markers.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(vr.bp)
    app.register_blueprint(admin_vr.bp)
    app.register_blueprint(vr_api.bp)
    app.register_blueprint(vr_api.admin_bp)
    app.register_blueprint(shows.bp)
    live.install(app)  # the change feed, service worker, manifest and offline page
    app.register_blueprint(subtitle_routes.prefs_bp)  # its track routes are nested in media.bp
    app.teardown_appcontext(common.close_db)
    app.config["ASSET_VERSION"] = _asset_version(Path(app.static_folder or "static"))
    assets.install(app)  # versioned static URLs (asset()), kept by browsers for a year
    common.install_template_helpers(app, app.config["ASSET_VERSION"])
    ui.install_ui_helpers(app)
    guards.install(app, settings)
    access.install(app)  # after the Host check: sign-in, roles, CSRF (default deny)
    live_direct.install(app)  # the change feed's "nothing changed" answered in front of Flask
    media_direct.install(app)  # the media file route answered in front of Flask
    if settings.proxy_count:  # outermost: every path sees the client's address and host
        n = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    _install_error_pages(app)
    return app


def _running_worker() -> bool:
    """Return True in `flask worker` (cli/worker.py), which needs no database."""
    if os.path.basename(sys.argv[0]) not in ("flask", "__main__.py"):
        return False
    words = [a for a in sys.argv[1:4] if not a.startswith("-")]
    return "worker" in words and sys.argv[sys.argv.index("worker") - 1] != "--app"


def _prepare_db(settings: Any) -> None:
    """Create the data dir, migrate, and bring setting-derived tables in step, once."""
    db = dbmod.open_db(settings.data_dir)
    try:
        projection.sync_folder_names(db, settings.vr_folders)
    finally:
        db.close()


class SQLiteInt(IntegerConverter):
    """An `<int:…>` URL part that fits SQLite's 64-bit INTEGER; a larger number matches nothing.

    Werkzeug's int converter has no upper bound, and SQLite raises OverflowError (a 500) on
    /playlists/99999999999999999999.
    """

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = 2**63 - 1, signed: bool = False) -> None:  # fmt: skip
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _asset_version(static: Path) -> str:
    """Return a short digest of the static files' names, sizes and mtimes: a new release, new URLs."""
    h = hashlib.sha256()
    for path in sorted(static.rglob("*")):
        if path.is_file():
            st = path.stat()
            h.update(f"{path.relative_to(static)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:10]


def _install_error_pages(app: Flask) -> None:
    """Map domain errors and HTTP errors to a short page with the status and the reason."""

    def page(status: int, title: str, message: str) -> Response:
        response = Response(
            render_template("error.html", status=status, title=title, message=message), status
        )
        response.headers["Vary"] = common.VARY
        return response

    @app.errorhandler(LVSError)
    def _domain_error(exc: LVSError) -> Response:
        status, title = next(
            ((code, name) for kind, code, name in ERROR_STATUS if isinstance(exc, kind)),
            (500, "Server error"),
        )
        log.info("%s %s -> %d: %s", request.method, request.path, status, exc)
        response = page(status, title, str(exc))
        if isinstance(exc, Unavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if exc.code is None or exc.code < 400:
            return exc
        return page(exc.code, exc.name, exc.description or "")
