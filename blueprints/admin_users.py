"""Admin: add, disable, enable and remove accounts, and change roles (only admins get in).

Each action is a plain form post (303 back to the page with a message) that htmx enhances: an
htmx post gets the `users` region back with the message in it.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, flash, g, redirect, request, url_for

from blueprints.common import get_db, render
from services.errors import InvalidInput
from services.people import users

log = logging.getLogger(__name__)

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")

REGIONS = {"users": "admin/_users.html"}


def _page(
    status: int = 200,
    error: str = "",
    form: dict | None = None,
    notice: str = "",
    problem: str = "",
) -> Response:
    """Render the page (or its `users` region); `error` is the add form's, `problem` a row's."""
    db = get_db()
    return render(
        "admin/users.html",
        REGIONS,
        status,
        users=users.list_users(db),
        admins=frozenset(users.active_admins(db)),
        error=error,
        form=form or {},
        notice=notice,
        problem=problem,
    )


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _back(message: str) -> Response:
    """Answer a done action: the region with the message (htmx), or back to the page."""
    if _htmx():
        return _page(notice=message)
    flash(message)
    return redirect(url_for("admin_users.index"), 303)


def _refused(message: str) -> Response:
    """Answer a refused action with 400: the page with the reason, or for htmx the region.

    htmx swaps no 4xx answer, so it is told to fetch the region, which shows the flashed reason.
    """
    log.warning("%s %s refused: %s", request.method, request.path, message)
    if not _htmx():
        return _page(400, problem=message)
    flash(message, "error")
    response = Response(message + "\n", 400, mimetype="text/plain")
    where = {"path": url_for("admin_users.index"), "target": "#users", "swap": "outerHTML"}
    response.headers["HX-Location"] = json.dumps(where)
    return response


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


@bp.post("/<int:user_id>/role")
def set_role(user_id: int) -> Response:
    """Make someone an admin or a viewer; an admin who demotes themselves lands on their account."""
    try:
        user = users.set_role(get_db(), user_id, request.form.get("role", ""), by=g.user.id)
    except InvalidInput as exc:
        return _refused(str(exc))
    if user.id != g.user.id or user.is_admin:
        return _back(f"{user.name} is now {'an admin' if user.is_admin else 'a viewer'}.")
    flash("You are now a viewer: another admin manages people and the server.")
    if _htmx():  # the admin pages are closed to them from now on: a whole new page
        return Response(status=204, headers={"HX-Redirect": url_for("account.index")})
    return redirect(url_for("account.index"), 303)


@bp.post("/<int:user_id>/metadata")
def set_metadata(user_id: int) -> Response:
    """Give or withhold a viewer's permission to edit shared tags, markers and projections."""
    allowed = request.form.get("allowed") == "1"
    try:
        user = users.set_metadata_permission(get_db(), user_id, allowed, by=g.user.id)
    except InvalidInput as exc:
        return _refused(str(exc))
    verb = "may now" if allowed else "may no longer"
    return _back(f"{user.name} {verb} edit shared tags, markers and projections.")


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
