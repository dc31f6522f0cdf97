"""The `flask` account commands: create-user, reset-password, set-role."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlite_utils import Database

from cli.fmt import app_settings
from services import db as dbmod
from services.errors import LVSError
from services.people import sessions, users


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _named(name: str) -> tuple[Database, users.User]:
    """Return the database and the account called `name` (any case), or stop with a message."""
    db = dbmod.open_db(app_settings().data_dir)
    user = users.by_name(db, name)
    if user is None:
        raise click.ClickException(f"no user called {name!r}")
    return db, user


@click.command("create-user")
@click.argument("name")
@click.option("--admin", is_flag=True, help="An admin (default: a viewer).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def create_user_command(name: str, admin: bool, password_stdin: bool) -> None:
    """Create an account. The first admin takes over what was watched before accounts existed."""
    password = _password(password_stdin)
    try:
        db = dbmod.open_db(app_settings().data_dir)
        user = users.create(db, name, "admin" if admin else "viewer", password)
    except LVSError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role} {user.name!r} (id {user.id}).")


@click.command("reset-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def reset_password_command(name: str, password_stdin: bool) -> None:
    """Set a new password for an account and end all its sessions."""
    try:
        db, user = _named(name)
        users.set_password(db, user.id, _password(password_stdin))
        ended = sessions.end_all(db, user.id)
    except LVSError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Password of {user.name!r} changed; {ended} session(s) ended.")


@click.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(users.ROLES))
@with_appcontext
def set_role_command(name: str, role: str) -> None:
    """Make an account an admin or a viewer (never the last active admin a viewer)."""
    try:
        db, user = _named(name)
        changed = users.set_role(db, user.id, role, by=None)
    except LVSError as exc:
        raise click.ClickException(str(exc)) from None
    was = "already" if user.role == changed.role else "now"
    click.echo(f"{changed.name!r} is {was} {'an' if role == 'admin' else 'a'} {role}.")


def register(app: Flask) -> None:
    """Add the account commands to `flask`."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(reset_password_command)
    app.cli.add_command(set_role_command)
