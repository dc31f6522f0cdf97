"""Your account: sessions (sign out elsewhere or everywhere), passkeys, API tokens, password."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from blueprints import access
from blueprints.auth import origin, passkey_blocker, rp_id
from blueprints.common import get_db
from services.people import apitokens, passkeys, passwords, sessions, users

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
def _sessions_only() -> None:
    # An API token opens the library, not the keys to the account.
    if g.user is None or g.user.via != "session":
        abort(403, "Manage your account from a signed-in browser.")


def _page(status: int = 200, **extra: object) -> Response:
    db, me = get_db(), g.user
    page = render_template(
        "account/index.html",
        sessions=sessions.list_for(db, me.id),
        current=me.session_hash,
        passkeys=passkeys.list_for(db, me.id),
        tokens=apitokens.list_for(db, me.id),
        passkey_blocker=passkey_blocker(),
        **extra,
    )
    return Response(page, status)


def _back(message: str) -> Response:
    flash(message)
    return redirect(url_for("account.index"), 303)


@bp.get("")
def index() -> Response:
    return _page()


@bp.post("/password")
def change_password() -> Response:
    """Change your password; every other session ends."""
    db, me, form = get_db(), g.user, request.form
    try:
        ok = passwords.verify(form.get("current", ""), users.password_hash(db, me.id))
        if me.has_password and not ok:
            return _page(400, password_error="Your current password is not right.")
        if form.get("new", "") != form.get("confirm", ""):
            return _page(400, password_error="The two new passwords differ.")
        users.set_password(db, me.id, form.get("new", ""))
    except passwords.PasswordRejected as exc:
        return _page(400, password_error=f"{exc}.")
    ended = sessions.end_all(db, me.id, keep=me.session_hash)
    return _back(f"Password changed; {ended} other session{'s' if ended != 1 else ''} ended.")


@bp.post("/sessions/<token_hash>/end")
def end_session(token_hash: str) -> Response:
    if token_hash == g.user.session_hash:
        return _back("To end this session, sign out.")
    sessions.end_user_session(get_db(), g.user.id, token_hash)
    return _back("Session ended.")


@bp.post("/sessions/end-others")
def end_other_sessions() -> Response:
    ended = sessions.end_all(get_db(), g.user.id, keep=g.user.session_hash)
    return _back(f"{ended} other session{'s' if ended != 1 else ''} ended.")


@bp.post("/sessions/end-all")
def sign_out_everywhere() -> Response:
    sessions.end_all(get_db(), g.user.id)
    return access.clear_session_cookie(redirect(url_for("auth.login"), 303))


@bp.post("/passkeys/options")
def passkey_options() -> Response:
    if passkey_blocker():
        abort(400, passkey_blocker())
    handle, options = passkeys.registration_options(get_db(), g.user, rp_id())
    return jsonify(handle=handle, options=options)


@bp.post("/passkeys")
def passkey_register() -> Response | tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict | str):
        return jsonify(error="expected JSON with handle, credential and name"), 400
    credential = body["credential"]
    try:
        key = passkeys.finish_registration(
            get_db(),
            g.user.id,
            str(body.get("handle", "")),
            credential if isinstance(credential, str) else json.dumps(credential),
            str(body.get("name") or ""),
            rp_id(),
            origin(),
        )
    except passkeys.PasskeyError as exc:
        return jsonify(error=str(exc)), 400
    flash(f"Passkey “{key.name}” added.")
    return jsonify(id=key.id, name=key.name)


@bp.post("/passkeys/<int:key_id>/rename")
def passkey_rename(key_id: int) -> Response:
    passkeys.rename(get_db(), g.user.id, key_id, request.form.get("name", ""))
    return _back("Passkey renamed.")


@bp.post("/passkeys/<int:key_id>/delete")
def passkey_delete(key_id: int) -> Response:
    passkeys.delete(get_db(), g.user.id, key_id)
    return _back("Passkey deleted.")


@bp.post("/tokens")
def token_create() -> Response:
    token = apitokens.create(get_db(), g.user.id, request.form.get("name", ""))
    return _page(201, new_token=token)


@bp.post("/tokens/<int:token_id>/delete")
def token_delete(token_id: int) -> Response:
    apitokens.revoke(get_db(), g.user.id, token_id)
    return _back("Token revoked.")
