"""Passkeys (WebAuthn): register, list, rename, delete, and sign in, with the `webauthn` package.

Challenges live in the database, not in the browser: each is single use (taken out as it is
checked), expires after CHALLENGE_TTL and is found again by a random handle the page sends back.
Anything wrong with a ceremony (bad JSON, wrong origin, forged signature, replayed challenge, a
sign counter that went backwards) is a PasskeyError, which HTTP answers with 400.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass

import webauthn
from sqlite_utils import Database
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.people import users
from services.people.sessions import token_hash

log = logging.getLogger(__name__)

CHALLENGE_TTL = 300.0
RP_NAME = "Local Video Server"
MAX_CEREMONY = 64 * 1024  # bytes of JSON a browser sends back; anything longer is not one


class PasskeyError(InvalidInput):
    """A passkey ceremony failed: malformed, tampered, expired or replayed."""


@dataclass(frozen=True)
class Passkey:
    """One registered passkey (its public half)."""

    id: int
    user_id: int
    name: str
    created_at: float
    last_used: float | None
    sign_count: int


def _new_challenge(db: Database, kind: str, user_id: int | None) -> tuple[str, bytes]:
    handle, challenge = secrets.token_urlsafe(24), secrets.token_bytes(32)
    now = time.time()
    with dbmod.write(db):
        db.execute("DELETE FROM webauthn_challenges WHERE expires_at < ?", [now])
        db.execute(
            "INSERT INTO webauthn_challenges (handle_hash, challenge, kind, user_id, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [token_hash(handle), challenge, kind, user_id, now + CHALLENGE_TTL],
        )
    return handle, challenge


def _take_challenge(db: Database, handle: str, kind: str, user_id: int | None) -> bytes:
    """Return the challenge behind `handle` and delete it: a challenge is used at most once."""
    th = token_hash(str(handle))
    with dbmod.write(db):
        row = db.execute(
            "SELECT challenge, kind, user_id, expires_at FROM webauthn_challenges "
            "WHERE handle_hash = ?",
            [th],
        ).fetchone()
        db.execute("DELETE FROM webauthn_challenges WHERE handle_hash = ?", [th])
    if row is None or row[1] != kind or row[2] != user_id:
        raise PasskeyError("this passkey request is unknown or was already used; try again")
    if row[3] < time.time():
        raise PasskeyError("this passkey request expired; try again")
    return bytes(row[0])


def _check_size(credential: str) -> None:
    if len(credential) > MAX_CEREMONY:
        raise PasskeyError("the passkey answer is too large")


def registration_options(db: Database, user: users.User, rp_id: str) -> tuple[str, str]:
    """Return (handle, options JSON) to create a passkey for `user` on this site."""
    existing = db.execute(
        "SELECT credential_id FROM passkeys WHERE user_id = ?", [user.id]
    ).fetchall()
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_name=user.name,
        user_id=users.webauthn_handle(db, user.id),
        user_display_name=user.name,
        timeout=int(CHALLENGE_TTL * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=bytes(r[0])) for r in existing],
    )
    handle, challenge = _new_challenge(db, "register", user.id)
    # The options carry the stored challenge, not the one the library made up.
    data = json.loads(webauthn.options_to_json(options))
    data["challenge"] = webauthn.helpers.bytes_to_base64url(challenge)
    return handle, json.dumps(data)


def finish_registration(
    db: Database, user_id: int, handle: str, credential: str, name: str, rp_id: str, origin: str
) -> Passkey:
    """Check the browser's answer to registration_options and keep the new passkey."""
    _check_size(credential)
    name = (name or "").strip()[:64] or "Passkey"
    challenge = _take_challenge(db, handle, "register", user_id)
    try:
        parsed = parse_registration_credential_json(credential)
        verified = webauthn.verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        log.info("passkey registration refused for user %d: %s", user_id, exc)
        raise PasskeyError(f"the passkey could not be registered: {exc}") from None
    transports = ",".join(t.value for t in (parsed.response.transports or []))
    with dbmod.write(db):
        if db.execute(
            "SELECT 1 FROM passkeys WHERE credential_id = ?", [verified.credential_id]
        ).fetchone():
            raise PasskeyError("this passkey is already registered")
        cur = db.execute(
            "INSERT INTO passkeys (user_id, credential_id, public_key, sign_count, name, "
            "transports, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                user_id,
                verified.credential_id,
                verified.credential_public_key,
                verified.sign_count,
                name,
                transports,
                time.time(),
            ],
        )
    return get(db, user_id, cur.lastrowid)


def login_options(db: Database, rp_id: str) -> tuple[str, str]:
    """Return (handle, options JSON) to sign in with any passkey of this site (discoverable)."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        timeout=int(CHALLENGE_TTL * 1000),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    handle, challenge = _new_challenge(db, "login", None)
    data = json.loads(webauthn.options_to_json(options))
    data["challenge"] = webauthn.helpers.bytes_to_base64url(challenge)
    return handle, json.dumps(data)


def finish_login(db: Database, handle: str, credential: str, rp_id: str, origin: str) -> int:
    """Check a passkey sign-in and return the user id; PasskeyError if anything is off."""
    _check_size(credential)
    challenge = _take_challenge(db, handle, "login", None)
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(f"malformed passkey answer: {exc}") from None
    row = db.execute(
        "SELECT p.id, p.user_id, p.public_key, p.sign_count, u.webauthn_handle, u.disabled "
        "FROM passkeys p JOIN users u ON u.id = p.user_id WHERE p.credential_id = ?",
        [parsed.raw_id],
    ).fetchone()
    if row is None or row[5]:
        raise PasskeyError("this passkey is not registered here")
    key_id, user_id, public_key, sign_count, user_handle, _ = row
    if parsed.response.user_handle and bytes(user_handle or b"") != parsed.response.user_handle:
        raise PasskeyError("the passkey belongs to another account")
    try:
        verified = webauthn.verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=bytes(public_key),
            credential_current_sign_count=sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        log.warning("passkey sign-in refused for user %d: %s", user_id, exc)
        raise PasskeyError(f"the passkey sign-in was refused: {exc}") from None
    with dbmod.write(db):
        db.execute(
            "UPDATE passkeys SET sign_count = ?, last_used = ? WHERE id = ?",
            [verified.new_sign_count, time.time(), key_id],
        )
    return user_id


_COLUMNS = "id, user_id, name, created_at, last_used, sign_count"


def get(db: Database, user_id: int, key_id: int | None) -> Passkey:
    """Return one of the user's passkeys, or raise NotFound."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM passkeys WHERE id = ? AND user_id = ?", [key_id, user_id]
    ).fetchone()
    if row is None:
        raise NotFound("no such passkey")
    return Passkey(*row)


def list_for(db: Database, user_id: int) -> list[Passkey]:
    """Return the user's passkeys, oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM passkeys WHERE user_id = ? ORDER BY created_at", [user_id]
    ).fetchall()
    return [Passkey(*r) for r in rows]


def rename(db: Database, user_id: int, key_id: int, name: str) -> None:
    """Rename one of the user's passkeys."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a passkey name is 1 to 64 characters")
    get(db, user_id, key_id)
    with dbmod.write(db):
        db.execute("UPDATE passkeys SET name = ? WHERE id = ?", [name, key_id])


def delete(db: Database, user_id: int, key_id: int) -> None:
    """Delete one of the user's passkeys."""
    get(db, user_id, key_id)
    with dbmod.write(db):
        db.execute("DELETE FROM passkeys WHERE id = ?", [key_id])
