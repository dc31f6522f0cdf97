"""Signing in and out: the login page (password or passkey), first-run setup, sign out."""

from __future__ import annotations

import ipaddress
import json

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from blueprints import access
from blueprints.common import get_db
from services.errors import InvalidInput
from services.people import passkeys, passwords, sessions, users

bp = Blueprint("auth", __name__)


def rp_id() -> str:
    """Return the WebAuthn relying party id: the host name the browser used, without the port."""
    host = request.host.lower()
    return host.partition("]")[0][1:] if host.startswith("[") else host.rsplit(":", 1)[0]


def origin() -> str:
    """Return the origin the browser is on, which a passkey answer must name."""
    return f"{request.scheme}://{request.host}"


def passkey_blocker() -> str | None:
    """Return why this browser cannot use passkeys on this address, or None if it can."""
    name = rp_id()
    try:
        ipaddress.ip_address(name)
        return (
            "Passkeys need the server's name, not an IP address: browsers refuse them on "
            f"{name}. Use the host name (see the README), or sign in with your password."
        )
    except ValueError:
        pass
    if request.scheme != "https" and name != "localhost" and not name.endswith(".localhost"):
        return (
            "Passkeys need HTTPS: browsers refuse them over plain HTTP except on localhost. "
            "Turn on LVS_TLS (see the README), or sign in with your password."
        )
    return None


def _login_page(status: int = 200, error: str = "", name: str = "") -> Response:
    page = render_template(
        "auth/login.html",
        error=error,
        name=name,
        next=access.safe_next(request.values.get("next"), ""),
        passkey_blocker=passkey_blocker(),
    )
    return Response(page, status)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if users.setup_needed(get_db()):
        return redirect(url_for("auth.setup"))
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(access.safe_next(request.args.get("next"), url_for("gallery.home")))
        return _login_page()
    name, password = request.form.get("name", ""), request.form.get("password", "")
    wait = access.sign_in_blocked(name)
    if wait is not None:
        response = _login_page(429, f"Too many sign-in attempts; try again in {wait} s.", name)
        response.headers["Retry-After"] = str(wait)
        return response
    db = get_db()
    user = users.by_name(db, name) if name.strip() else None
    try:
        ok = passwords.verify(password, users.password_hash(db, user.id) if user else None)
    except passwords.PasswordRejected as exc:
        access.sign_in_failed(name)
        return _login_page(400, f"That password cannot be right: {exc}.", name)
    if not ok or user is None or user.disabled:
        access.sign_in_failed(name)
        return _login_page(401, "Wrong name or password.", name)
    target = access.safe_next(request.form.get("next"), url_for("gallery.home"))
    return access.start_session(user.id, "password", redirect(target, 303))


@bp.post("/logout")
def logout() -> Response:
    cookie = request.cookies.get(access.COOKIE)
    if cookie:
        sessions.end(get_db(), sessions.token_hash(cookie))
    return access.clear_session_cookie(redirect(url_for("auth.login"), 303))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response:
    """Create the first admin; this page exists only while there is none."""
    db = get_db()
    if not users.setup_needed(db):
        abort(404)
    if request.method == "GET":
        return Response(render_template("auth/setup.html", error="", name=""))
    name, password = request.form.get("name", ""), request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        error = "The two passwords differ."
    else:
        try:
            user = users.create(db, name, "admin", password, first_admin=True)
        except InvalidInput as exc:
            error = str(exc)
        else:
            return access.start_session(user.id, "setup", redirect(url_for("gallery.home"), 303))
    page = render_template("auth/setup.html", error=error, name=name)
    return Response(page, 400)


def _too_many(wait: int) -> Response:
    response = jsonify(error=f"Too many sign-in attempts; try again in {wait} s.")
    response.status_code, response.headers["Retry-After"] = 429, str(wait)
    return response


@bp.post("/login/passkey/options")
def passkey_login_options() -> Response:
    if passkey_blocker():
        abort(400, passkey_blocker())
    # Public and it writes a challenge row: limited like a sign-in attempt, per address.
    wait = access.limited(None)
    if wait is not None:
        return _too_many(wait)
    handle, options = passkeys.login_options(get_db(), rp_id())
    return jsonify(handle=handle, options=options)


@bp.post("/login/passkey")
def passkey_login() -> Response | tuple[Response, int]:
    wait = access.sign_in_blocked(None)
    if wait is not None:
        return _too_many(wait)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict | str):
        access.sign_in_failed(None)
        return jsonify(error="expected JSON with handle and credential"), 400
    try:
        uid = passkeys.finish_login(
            get_db(), str(body.get("handle", "")), _credential_json(body), rp_id(), origin()
        )
    except passkeys.PasskeyError as exc:
        access.sign_in_failed(None)
        return jsonify(error=str(exc)), 400
    target = access.safe_next(str(body.get("next") or ""), url_for("gallery.home"))
    return access.start_session(uid, "passkey", jsonify(next=target))


def _credential_json(body: dict) -> str:
    """Return the credential part of a ceremony body as JSON text for the webauthn parser."""
    credential = body["credential"]
    return credential if isinstance(credential, str) else json.dumps(credential)
