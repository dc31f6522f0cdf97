"""Who may do what: the default-deny guard, roles, CSRF, the session cookie and sign-in limits.

Every endpoint needs a signed-in user except PUBLIC_ENDPOINTS. A user is found, in order, from
`Authorization: Bearer <API token>` (no cookies, so no CSRF), the session cookie (CSRF checked on
every unsafe method), or a signed media URL (GET/HEAD of that one media item). Blueprints whose
name starts with "admin" need the admin role. With LVS_GUEST=on, nobody-signed-in may read
(GET/HEAD) anything but admin and account pages.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect
from sqlite_utils import Database
from werkzeug.sansio.http import parse_cookie

from blueprints.common import VARY, get_db, settings
from services.people import apitokens, ratelimit, sessions, users

log = logging.getLogger(__name__)

COOKIE = "lvs_session"
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "assets.file",
        "auth.login",
        "auth.setup",
        "auth.passkey_login_options",
        "auth.passkey_login",
        "health.health",
        "health.livez",
        "health.readyz",
        "live.service_worker",  # the installable app's parts hold no user data
        "live.manifest",
        "live.offline",
    }
)
# The VR players' APIs (blueprints/vr_api.py): players post names, passwords and auth-tokens,
# never a session with a CSRF token, so these check credentials themselves and never write on
# the strength of a session cookie alone.
SELF_AUTHENTICATED = ("vr_api.",)
NO_GUESTS = ("account.", "admin")  # endpoint prefixes a guest never sees
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LIMIT_WINDOW = 300
csrf = CSRFProtect()


@dataclass(frozen=True)
class Account(users.User, UserMixin):
    """The signed-in user as flask-login sees it."""

    via: str = "session"  # session | token | signed
    session_hash: str = ""

    def get_id(self) -> str:
        return str(self.id)


def install(app: Flask) -> None:
    """Wire sign-in, CSRF and the default-deny guard into the app."""
    cfg = app.config["SETTINGS"]
    secret = sessions.secret_key(cfg.data_dir)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="lvs_csrf",  # Flask's cookie holds only the CSRF secret
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.tls != "off",
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in the guard, after we know how the user came
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the browser's CSRF cookie
    )
    app.extensions["media_secret"] = secret
    csrf.init_app(app)
    manager = LoginManager(app)
    manager.request_loader(lambda _request: g.get("user"))
    app.before_request(_guard)

    @app.context_processor
    def _auth_context() -> dict:
        return {"me": g.get("user"), "guest": g.get("user") is None}


def _find_user() -> Account | None:
    """Return who is asking (token, session cookie, signed media URL), or None."""
    view_args = request.view_args or {}
    return identify(
        get_db,
        _secret(),
        authorization=request.headers.get("Authorization", ""),
        cookie=request.cookies.get(COOKIE),
        media_hash=view_args.get("media_hash") if request.method in ("GET", "HEAD") else None,
        args=request.args,
    )


def identify(
    open_db: Callable[[], Database],
    secret: bytes,
    *,
    authorization: str,
    cookie: str | None,
    media_hash: str | None,
    args: Mapping[str, str],
) -> Account | None:
    """Return who is asking from the credentials a request offers, or None.

    In order: `Authorization: Bearer <API token>`, the session cookie, a signed URL for
    `media_hash` (the media item a GET or HEAD names, if any). Without Flask, so the direct
    media path (blueprints/media_direct.py) decides exactly as the guard does. The database is
    opened only when a credential is offered: health probes must answer (and say what is wrong)
    even when it cannot be opened.
    """
    return _identify(open_db, secret, authorization, cookie, media_hash, args)[0]


def identify_memo(
    memo: dict[Any, Any],
    db: Database,
    secret: bytes,
    *,
    authorization: str,
    cookie_header: str | None,
    media_hash: str | None,
    args: Mapping[str, str],
) -> Account | None:
    """`identify`, remembering its answer in `memo` (services.db.memo: emptied by any commit).

    For the requests that come many times a second with the same credentials — a player's
    ranges and segments. The key is the credentials as offered (the raw Cookie header: its
    parsing is left out too); an answer is reused only while it would be the same and write
    nothing: a session before its expiry and before its once-a-minute last_seen write, an API
    token before its last_used write, a signed URL before it expires. Everything else that
    changes the answer — a session ended, a user disabled, deleted or given another role, a
    password changed, a token revoked — is a commit, which empties the memo for every thread
    of every process before their next request.
    """
    signed = (args.get("s"), args.get("u"), args.get("e")) if media_hash and "s" in args else None
    key = ("identify", authorization, cookie_header, media_hash if signed else None, signed)
    kept = memo.get(key)
    now = time.time()
    if kept is not None and now <= kept[1]:
        return kept[0]
    # The header as Flask's request.cookies reads it: werkzeug.http.parse_cookie(environ)
    # decodes it as UTF-8 first and raised on any other cookie of the browser's.
    cookie = parse_cookie(cookie_header).get(COOKIE) if cookie_header else None
    user, until = _identify(lambda: db, secret, authorization, cookie, media_hash, args, now)
    if user is not None and until >= now:
        memo[key] = (user, until)
    return user


def _identify(
    open_db: Callable[[], Database],
    secret: bytes,
    authorization: str,
    cookie: str | None,
    media_hash: str | None,
    args: Mapping[str, str],
    now: float | None = None,
) -> tuple[Account | None, float]:
    """`identify`, and until when its answer holds unless the database changes."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        found = (
            apitokens.authenticate_until(open_db(), token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if found is None:
            return None, -math.inf
        return _account(open_db(), found[0], "token"), found[1]
    if cookie:
        session = sessions.lookup(open_db(), cookie)
        if session is not None:
            user = _account(open_db(), session.user_id, "session", session.token_hash)
            return user, sessions.holds_until(session)
    if media_hash and "s" in args:
        params = {key: args[key] for key in ("s", "u", "e") if key in args}
        uid = apitokens.check_media_signature(secret, media_hash, params, now)
        if not uid:
            return None, -math.inf
        return _account(open_db(), uid, "signed"), float(int(params["e"]))
    return None, -math.inf


def _secret() -> bytes:
    return current_app.extensions["media_secret"]


def _account(db: Database, uid: int | None, via: str, session_hash: str = "") -> Account | None:
    user = users.get(db, uid) if uid else None
    if user is None or user.disabled:
        return None
    return Account(**user.__dict__, via=via, session_hash=session_hash)


# Writes to what every account sees (issue 16): an admin, or a viewer an admin has allowed.
SHARED_METADATA = frozenset(
    {
        "tags.add",
        "tags.remove",
        "tags.bulk",
        "markers.add",
        "markers.delete",
        "admin_vr.watch_projection",
        "admin_vr.bulk_projection",
        "admin_vr.selection_projection",
    }
)


def _guard() -> Response | None:
    endpoint = request.endpoint
    if endpoint is None:  # no such route: the 404 page, whose header shows who is signed in
        found = _find_user()
        g.user = found if found is not None and found.via != "signed" else None
        return None
    user = _find_user()
    g.user = user
    if user is None and request.headers.get("Authorization"):
        response = _deny(401, "That API token is not valid.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="lvs", error="invalid_token"'
        return response
    if user is not None and user.via == "signed" and not endpoint.startswith("media."):
        g.user = user = None  # a signed URL opens one media item, nothing else
    if endpoint.startswith(SELF_AUTHENTICATED):
        return None  # they check their own credentials; no cookie-borne write rides on them
    if endpoint not in PUBLIC_ENDPOINTS and user is None:
        if not (settings().guest and request.method in SAFE_METHODS):
            return _sign_in_first()
        if endpoint.startswith(NO_GUESTS):
            return _sign_in_first()
    shared = endpoint in SHARED_METADATA and request.method not in SAFE_METHODS
    if not shared and endpoint.split(".")[0].startswith("admin") and not (user and user.is_admin):
        return _deny(403, "Only an admin may do that.")
    if request.method not in SAFE_METHODS and (user is None or user.via == "session"):
        csrf.protect()  # an API token comes without cookies: nothing for a forged form to ride on
    if shared and not (user and user.may_edit_metadata):
        return _deny(403, "Your account may not change shared tags, markers or projections.")
    return None


def wants_page() -> bool:
    """Return whether the request is a browser navigating to a page (not media, API or htmx)."""
    if request.method not in ("GET", "HEAD") or request.headers.get("HX-Request"):
        return False
    if (request.endpoint or "").startswith("media."):
        return False
    return "text/html" in request.headers.get("Accept", "")


def _sign_in_first() -> Response:
    login = url_for("auth.login", next=request.full_path.rstrip("?"))
    if wants_page():
        return redirect(login)
    response = _deny(401, "Sign in first.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="lvs"'
    if request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = url_for("auth.login")
    return response


def _deny(status: int, message: str) -> Response:
    """Refuse: the styled error page for a browser's page request, plain text for the rest."""
    log.info("%s %s -> %d (%s)", request.method, request.path, status, message)
    if wants_page():
        titles = {401: "Sign in first", 403: "Not for this account"}
        page = render_template(
            "error.html", status=status, title=titles.get(status, "Refused"), message=message
        )
        return Response(page, status, headers={"Vary": VARY})
    return Response(message + "\n", status, mimetype="text/plain")


def safe_next(target: str | None, default: str) -> str:
    """Return `target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def client_ip() -> str:
    """Return the client's address (ProxyFix has applied X-Forwarded-For only if configured)."""
    return request.remote_addr or ""


def _limit_keys(name: str | None) -> list[tuple[str, int]]:
    """Return the rate-limit keys of a sign-in: the client's address (an IPv6 /64 as one), the name."""
    cfg = settings()
    ip = client_ip()
    try:  # an IPv6 client may hold a whole /64: count it as one
        addr = ipaddress.ip_address(ip)
        if addr.version == 6:
            ip = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    except ValueError:
        pass
    keys = [(f"ip:{ip}", cfg.login_limit_ip)]
    if name and name.strip():
        keys.append((f"user:{name.strip().lower()}", cfg.login_limit))
    return keys


def limited(name: str | None) -> int | None:
    """Count a request per address (and account); return Retry-After seconds if over the limit.

    For public calls that cost the server something whatever their outcome (a passkey challenge).
    """
    db, wait = get_db(), None
    for key, limit in _limit_keys(name):
        wait = ratelimit.hit(db, key, limit, LIMIT_WINDOW) or wait
    return wait


def sign_in_blocked(name: str | None) -> int | None:
    """Return Retry-After seconds if this address or account failed too often lately, else None."""
    db, wait = get_db(), None
    for key, limit in _limit_keys(name):
        wait = ratelimit.wait(db, key, limit, LIMIT_WINDOW) or wait
    return wait


def sign_in_failed(name: str | None) -> None:
    """Count a failed sign-in against the address and the account (successes never count)."""
    log.info("sign-in failed for %r from %s", (name or "")[:64], client_ip())
    db = get_db()
    for key, limit in _limit_keys(name):
        ratelimit.hit(db, key, limit, LIMIT_WINDOW)


def set_session_cookie(response: Response, token: str) -> Response:
    """Set the session cookie: HttpOnly, SameSite=Lax, Secure under HTTPS."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(sessions.LIFETIME),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/",
    )
    return response


def clear_session_cookie(response: Response) -> Response:
    """Remove the session cookie."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="Lax", secure=request.is_secure
    )
    return response


def start_session(user_id: int, method: str, response: Response) -> Response:
    """Sign a user in: end the browser's old session (rotation), new token, new CSRF secret."""
    db = get_db()
    old = request.cookies.get(COOKIE)
    if old:
        sessions.end(db, sessions.token_hash(old))
    flask_session.clear()  # a fresh CSRF secret with the fresh session
    token = sessions.create(
        db, user_id, user_agent=request.headers.get("User-Agent", ""), ip=client_ip(), method=method
    )
    return set_session_cookie(response, token)
