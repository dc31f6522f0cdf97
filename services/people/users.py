"""Accounts: admins and viewers, the first-run admin, passwords, disabling and removing."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.people import passwords

log = logging.getLogger(__name__)

ROLES = ("admin", "viewer")
DEFAULT_USER = 1  # the row migration m0002 made; the first admin takes it over
MAX_NAME = 64


@dataclass(frozen=True)
class User:
    """One account."""

    id: int
    name: str
    role: str
    disabled: bool
    has_password: bool
    created_at: float
    can_edit_metadata: bool = False  # given by an admin to a viewer (admins always may)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_edit_metadata(self) -> bool:
        """Return whether this account may change shared tags, markers and projections."""
        return self.role == "admin" or self.can_edit_metadata


_COLUMNS = "id, name, role, disabled, password_hash IS NOT NULL, created_at, can_edit_metadata"
# An admin who can act: enabled, and able to sign in (a password or a passkey). The default
# user row (m0002) is an admin by default but, until /setup claims it, can do neither.
_ACTIVE_ADMIN = (
    "role = 'admin' AND disabled = 0 AND (password_hash IS NOT NULL "
    "OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id))"
)


def _row(row: tuple) -> User:
    return User(row[0], row[1], row[2], bool(row[3]), bool(row[4]), row[5], bool(row[6]))


def check_name(name: str) -> str:
    """Return the trimmed user name, or raise InvalidInput."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        raise InvalidInput(f"a user name is 1 to {MAX_NAME} printable characters")
    return name


def get(db: Database, user_id: int) -> User | None:
    """Return the user with this id, or None."""
    row = db.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
    return _row(row) if row else None


def by_name(db: Database, name: str) -> User | None:
    """Return the user with this name (any case), or None."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM users WHERE name = ? COLLATE NOCASE", [name.strip()]
    ).fetchone()
    return _row(row) if row else None


def password_hash(db: Database, user_id: int) -> str | None:
    """Return the stored bcrypt hash of a user's password, if any."""
    row = db.execute("SELECT password_hash FROM users WHERE id = ?", [user_id]).fetchone()
    return row[0] if row else None


def list_users(db: Database) -> list[User]:
    """Return every account that can sign in or could, by name; not the unclaimed default row."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM users WHERE NOT (id = ? AND password_hash IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id)) "
        "ORDER BY name COLLATE NOCASE",
        [DEFAULT_USER],
    ).fetchall()
    return [_row(r) for r in rows]


def setup_needed(db: Database) -> bool:
    """Return whether no admin can sign in yet: the first-run /setup page is open only then."""
    row = db.execute(
        "SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0 AND password_hash IS NOT NULL"
    ).fetchone()
    return row is None


def create(
    db: Database,
    name: str,
    role: str,
    password: str,
    *,
    rounds: int = passwords.ROUNDS,
    first_admin: bool = False,
) -> User:
    """Create an account; the first admin takes over the default user and what it recorded.

    `first_admin` (the /setup page) fails if an admin appeared meanwhile (two setups racing).
    """
    name = check_name(name)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    hashed = passwords.hash_password(password, rounds)
    with dbmod.write(db):
        if first_admin and not setup_needed(db):
            raise InvalidInput("the first admin was already created; sign in")
        claim = role == "admin" and setup_needed(db) and _default_unclaimed(db)
        existing = by_name(db, name)
        if existing is not None and not (claim and existing.id == DEFAULT_USER):
            raise InvalidInput(f"there is already a user called {name!r}")
        if claim:
            db.execute(
                "UPDATE users SET name = ?, role = 'admin', password_hash = ?, disabled = 0 "
                "WHERE id = ?",
                [name, hashed, DEFAULT_USER],
            )
            user_id = DEFAULT_USER
        else:
            cur = db.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                [name, role, hashed, time.time()],
            )
            user_id = cur.lastrowid
    user = get(db, user_id)
    assert user is not None
    return user


def _default_unclaimed(db: Database) -> bool:
    row = db.execute(
        "SELECT password_hash IS NULL FROM users WHERE id = ?", [DEFAULT_USER]
    ).fetchone()
    return bool(row and row[0])


def set_password(db: Database, user_id: int, password: str) -> None:
    """Replace a user's password (the caller ends their other sessions)."""
    hashed = passwords.hash_password(password)
    with dbmod.write(db):
        if (
            db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", [hashed, user_id]
            ).rowcount
            != 1
        ):
            raise NotFound("no such user")


def set_disabled(db: Database, user_id: int, disabled: bool) -> None:
    """Disable (ending every session and token) or enable an account."""
    with dbmod.write(db):
        if (
            db.execute(
                "UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user_id]
            ).rowcount
            != 1
        ):
            raise NotFound("no such user")
        if disabled:
            db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])


def remove(db: Database, user_id: int) -> None:
    """Delete an account with its sessions, passkeys, tokens and per-user data (cascades)."""
    with dbmod.write(db):
        if db.execute("DELETE FROM users WHERE id = ?", [user_id]).rowcount != 1:
            raise NotFound("no such user")


def active_admins(db: Database) -> list[int]:
    """Return the ids of the admins who can sign in and are not disabled."""
    return [r[0] for r in db.execute(f"SELECT id FROM users WHERE {_ACTIVE_ADMIN}").fetchall()]


def set_role(db: Database, user_id: int, role: str, *, by: int | None) -> User:
    """Make an account an admin or a viewer on behalf of the admin `by` (None: the server's
    operator, at the `flask set-role` command); return it changed.

    The last active admin is never demoted, so someone can always manage the server; the check
    and the change are one write transaction, so two admins demoting each other at the same
    moment cannot both win. Sessions and API tokens stay: the role is read on every request.
    """
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    with dbmod.write(db):
        user = get(db, user_id)
        if user is None:
            raise NotFound("no such user")
        admins = active_admins(db)
        if by is not None and by not in admins:  # demoted or disabled since let in
            raise InvalidInput("only an active admin may change roles")
        if user.role == role:
            return user
        if role == "viewer" and not [a for a in admins if a != user_id]:
            raise InvalidInput(
                f"{user.name} is the only active admin: make someone else an admin first"
            )
        db.execute("UPDATE users SET role = ? WHERE id = ?", [role, user_id])
    who = "the operator (flask set-role)" if by is None else f"user {by}"
    log.info("role of user %d (%r): %s -> %s, by %s", user_id, user.name, user.role, role, who)
    changed = get(db, user_id)
    assert changed is not None
    return changed


def set_metadata_permission(db: Database, user_id: int, allowed: bool, *, by: int) -> User:
    """Give or withhold an account's permission to edit shared metadata, on behalf of admin `by`."""
    with dbmod.write(db):
        if by not in active_admins(db):
            raise InvalidInput("only an active admin may change permissions")
        user = get(db, user_id)
        if user is None:
            raise NotFound("no such user")
        db.execute("UPDATE users SET can_edit_metadata = ? WHERE id = ?", [int(allowed), user_id])
    log.info(
        "user %d (%r) %s edit shared metadata, by user %d",
        user_id,
        user.name,
        "may" if allowed else "may not",
        by,
    )
    changed = get(db, user_id)
    assert changed is not None
    return changed


def webauthn_handle(db: Database, user_id: int) -> bytes:
    """Return the user's random WebAuthn user handle, made on first use (never the id or name)."""
    with dbmod.write(db):
        row = db.execute("SELECT webauthn_handle FROM users WHERE id = ?", [user_id]).fetchone()
        if row is None:
            raise NotFound("no such user")
        if row[0]:
            return bytes(row[0])
        handle = secrets.token_bytes(32)
        db.execute("UPDATE users SET webauthn_handle = ? WHERE id = ?", [handle, user_id])
        return handle
