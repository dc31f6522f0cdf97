"""Admin: add, disable, enable and remove accounts (the guard lets only admins in)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from blueprints.common import get_db
from services import users
from services.errors import InvalidInput

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def _page(status: int = 200, error: str = "", form: dict | None = None) -> Response:
    page = render_template(
        "admin/users.html", users=users.list_users(get_db()), error=error, form=form or {}
    )
    return Response(page, status)


def _back(message: str) -> Response:
    flash(message)
    return redirect(url_for("admin_users.index"), 303)


def _not_me(user_id: int) -> None:
    if user_id == g.user.id:
        raise InvalidInput("you cannot do that to your own account here")


@bp.get("")
def index() -> Response:
    return _page()


@bp.post("")
def add() -> Response:
    form = request.form
    try:
        user = users.create(
            get_db(), form.get("name", ""), form.get("role", "viewer"), form.get("password", "")
        )
    except InvalidInput as exc:
        return _page(400, str(exc), dict(form))
    return _back(f"{user.name} can now sign in.")


@bp.post("/<int:user_id>/disable")
def disable(user_id: int) -> Response:
    _not_me(user_id)
    users.set_disabled(get_db(), user_id, True)
    return _back("Account disabled; its sessions ended.")


@bp.post("/<int:user_id>/enable")
def enable(user_id: int) -> Response:
    users.set_disabled(get_db(), user_id, False)
    return _back("Account enabled.")


@bp.post("/<int:user_id>/remove")
def remove(user_id: int) -> Response:
    _not_me(user_id)
    users.remove(get_db(), user_id)
    return _back("Account removed with its history.")
