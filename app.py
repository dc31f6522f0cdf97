"""The application factory."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

import cli
from blueprints import (
    access,
    account,
    admin,
    admin_tags,
    admin_users,
    auth,
    common,
    gallery,
    health,
    markers,
    media,
    playlists,
    ratings_api,
    search,
    tags,
    watch,
)
from blueprints import metrics as request_metrics
from config import Settings, load_settings
from services import db as dbmod
from services import logs
from services.errors import (
    InvalidInput,
    LVSError,
    NotFound,
    ScanBusy,
    StorageError,
    Unavailable,
)

log = logging.getLogger(__name__)

# Domain errors as HTTP: (status, title shown on the error page).
ERROR_STATUS: list[tuple[type[LVSError], int, str]] = [
    (NotFound, 404, "Not found"),
    (InvalidInput, 400, "Bad request"),
    (Unavailable, 503, "Storage not answering"),
    (StorageError, 503, "Storage problem"),
    (ScanBusy, 409, "Busy"),
]
# Names a DNS-rebinding attacker cannot own; "auto" trusts these, IP literals and this machine.
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal", ".home", ".localhost")
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, logging, database schema, commands.

    A wrong setting or an unusable data dir stops start-up with one line naming the problem.
    """
    try:
        settings = load_settings(test_config)
        dbmod.open_db(settings.data_dir).close()  # create the data dir and migrate, once
    except LVSError as exc:
        raise SystemExit(f"Error: {exc}") from None
    logs.setup(settings.log_level, settings.log_format)
    app = Flask(__name__)
    # Before any rule is added: an <int:…> part must fit SQLite's INTEGER, or it is a 404.
    app.url_map.converters["int"] = SQLiteInt
    app.config["SETTINGS"] = settings
    # Static URLs carry a version (asset()), so browsers may keep the files for a year.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 24 * 3600
    request_metrics.install(app)  # first: request ids and timing wrap the other hooks
    cli.register(app)
    mine = (auth.bp, account.bp, admin_users.bp)
    for blueprint in (gallery.bp, watch.bp, media.bp, health.bp, admin.bp, *mine):
        app.register_blueprint(blueprint)
    for blueprint in (search.bp, tags.bp, admin_tags.bp, ratings_api.bp, playlists.bp, markers.bp):
        app.register_blueprint(blueprint)
    app.teardown_appcontext(common.close_db)
    common.install_template_helpers(app, _asset_version(Path(app.static_folder or "static")))
    _install_guards(app, settings)
    access.install(app)  # after the Host check: sign-in, roles, CSRF (default deny)
    _install_error_pages(app)
    return app


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


def host_allowed(host: str, trusted: tuple[str, ...], machine: frozenset[str]) -> bool:
    """Return whether the Host header names this server, per LVS_TRUSTED_HOSTS.

    `auto` trusts IP literals, localhost, this machine's names, single-label LAN names and the
    local-only suffixes: names a DNS-rebinding page on the internet cannot point at us.
    """
    if "*" in trusted:
        return True
    name = host.lower()
    if name.startswith("["):
        name = name.partition("]")[0][1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if not name:
        return False
    for entry in trusted:
        if entry == name or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    if "auto" not in trusted:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return (
        name == "localhost" or name in machine or "." not in name or name.endswith(LOCAL_SUFFIXES)
    )


def _machine_names() -> frozenset[str]:
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    names |= {n.split(".")[0] + ".local" for n in names}
    return frozenset(names)


def _install_guards(app: Flask, settings: Settings) -> None:
    """Refuse foreign Host headers and cross-site writes; add security headers to every answer."""
    machine = _machine_names()
    allowed_origins = set(settings.cors_origins)

    @app.before_request
    def _check_request() -> Response | None:
        host = request.headers.get("Host", "")
        if not host_allowed(host, settings.trusted_hosts, machine):
            log.warning("refused Host %r from %s", host[:100], request.remote_addr)
            return Response(
                "This server does not answer to that host name; add it to LVS_TRUSTED_HOSTS.\n",
                400,
                mimetype="text/plain",
            )
        origin = request.headers.get("Origin")
        if request.method in UNSAFE_METHODS and origin and origin not in allowed_origins:
            if urlsplit(origin).netloc.lower() != host.lower():
                log.warning("refused cross-site %s from origin %r", request.method, origin[:100])
                return Response("Cross-site request refused.\n", 403, mimetype="text/plain")
        return None

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", CSP)
            headers.setdefault("X-Frame-Options", "DENY")
        return response


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
