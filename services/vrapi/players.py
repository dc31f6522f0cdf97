"""Sign-in for the VR players, HereSphere's auth-token, its playback events and the write-back.

- A player signs in with an account's name and password (DeoVR posts them with every request,
  HereSphere once to /heresphere/auth). A correct password is remembered in this process for
  VERIFIED_TTL under an HMAC of (name, password, stored hash), so a DeoVR browsing session does
  not cost a bcrypt per request; a changed password no longer matches. An API token works as the
  password too (accounts with only passkeys).
- HereSphere's auth-token is stateless: `hs1.<user>.<expiry>.<mac>` with the MAC over the user,
  the expiry and the account's password hash, so it ends with a password change, and the account
  is looked up on every request (a disabled or removed account is refused).
- Events: open/play/pause/close become the user's resume position and play history through
  services/organize/watchstate.record, as the browser's progress reports do; one viewing (one
  play counted) lasts while events keep coming less than VIEWING_GAP apart.
- Write-back of rating, favourite and tags, each only when an admin switched it on (table
  vr_write_back, the account page) or LVS_VR_WRITE_BACK names it.
  `deleteFile` is never honoured.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput
from services.organize import favorites, metacache, ratings, tags, watchstate
from services.people import apitokens, passwords, users

log = logging.getLogger(__name__)

TOKEN_TTL = 30 * 24 * 3600  # a HereSphere auth-token works this long
VERIFIED_TTL = 600.0  # a correct password is not checked with bcrypt again for this long
VIEWING_GAP = 1800.0  # events further apart than this start a new viewing (a new play)
WRITE_BACK = ("rating", "favorite", "tags")
EVENTS = {0: "open", 1: "play", 2: "pause", 3: "close"}

_verified: dict[bytes, float] = {}
_lock = threading.Lock()


def _password_key(secret: bytes, name: str, password: str, hashed: str) -> bytes:
    msg = "\0".join((name, password, hashed)).encode("utf-8", "replace")
    return hmac.new(secret, msg, hashlib.sha256).digest()


def check_password(db: Database, secret: bytes, name: str, password: str) -> users.User | None:
    """Return the enabled account these credentials sign in, else None (bcrypt-checked, or
    remembered for VERIFIED_TTL after a correct check)."""
    if not isinstance(name, str) or not isinstance(password, str):
        return None
    user = users.by_name(db, name.strip()) if name.strip() else None
    if password.startswith(apitokens.PREFIX):
        uid = apitokens.authenticate(db, password)
        ok = user is not None and uid == user.id
    else:
        hashed = users.password_hash(db, user.id) if user else None
        key = _password_key(secret, name.strip(), password, hashed or "")
        now = time.monotonic()
        with _lock:
            remembered = _verified.get(key, 0.0) > now
        ok = remembered or passwords.verify(password, hashed)
        if ok and hashed and not remembered:
            with _lock:
                if len(_verified) > 10_000:
                    _verified.clear()
                _verified[key] = now + VERIFIED_TTL
        ok = ok and bool(hashed)
    if not ok or user is None or user.disabled:
        return None
    return user


def _token_mac(secret: bytes, user_id: int, expires: int, hashed: str) -> str:
    msg = f"heresphere:{user_id}:{expires}:{hashed}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:40]


def issue_token(db: Database, secret: bytes, user_id: int, *, now: float | None = None) -> str:
    """Return a HereSphere auth-token for the user."""
    expires = int((now or time.time()) + TOKEN_TTL)
    hashed = users.password_hash(db, user_id) or ""
    return f"hs1.{user_id}.{expires}.{_token_mac(secret, user_id, expires, hashed)}"


def check_token(
    db: Database, secret: bytes, token: str, *, now: float | None = None
) -> users.User | None:
    """Return the enabled account an auth-token belongs to, or None (forged, expired, the
    password changed since, the account disabled or removed)."""
    parts = (token or "").split(".")
    if len(parts) != 4 or parts[0] != "hs1" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    if len(parts[1]) > 19 or len(parts[2]) > 12:
        return None
    user_id, expires = int(parts[1]), int(parts[2])
    if expires < (now or time.time()):
        return None
    user = users.get(db, user_id)
    if user is None or user.disabled:
        return None
    expected = _token_mac(secret, user_id, expires, users.password_hash(db, user_id) or "")
    if not hmac.compare_digest(expected.encode(), parts[3].encode("utf-8", "replace")):
        return None
    return user


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A HereSphere playback event."""

    kind: str  # open | play | pause | close
    seconds: float


def parse_event(body: Any) -> Event:
    """Return the event a HereSphere event body states; InvalidInput naming what is wrong."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the event must be a JSON object")
    code = body.get("event")
    if isinstance(code, bool) or not isinstance(code, int) or code not in EVENTS:
        raise InvalidInput("event: expected 0 (open), 1 (play), 2 (pause) or 3 (close)")
    ms = body.get("time", 0)
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms < 0:
        raise InvalidInput("time: expected the position in milliseconds")
    return Event(EVENTS[code], float(ms) / 1000.0)


def record_event(
    db: Database, user_id: int, media_hash: str, event: Event, *, now: float | None = None
) -> watchstate.WatchState | None:
    """Turn a playback event into the user's watch state, as the browser's progress reports do.

    `open` at the start changes nothing (the player has not played yet, and must not wipe the
    resume position); play, pause and close report the position. The viewing id (one counted
    play) is the one kept in watch_state when it is HereSphere's and recent, else a new one.
    """
    if event.kind == "open" and event.seconds == 0:
        return None
    now = time.time() if now is None else now
    row = db.execute(
        "SELECT w.viewing, w.last_played FROM watch_state w JOIN media m ON m.id = w.media_id "
        "WHERE w.user_id = ? AND m.media_hash = ?",
        [user_id, media_hash],
    ).fetchone()
    viewing = None
    if row and row[0] and row[0].startswith("hs-") and row[1] and now - row[1] < VIEWING_GAP:
        viewing = row[0]
    if viewing is None or event.kind == "open":
        viewing = "hs-" + secrets.token_hex(8)
    return watchstate.record(
        db, user_id, media_hash, position=event.seconds, duration=None, viewing=viewing, now=now
    )


# --- write-back -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    """What a HereSphere update changed, and what it asked for that is switched off."""

    changed: tuple[str, ...]
    refused: tuple[str, ...]


def write_back_enabled(db: Database, configured: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Return the kinds the VR players may change: an admin's switches and LVS_VR_WRITE_BACK."""
    on = {r[0] for r in db.execute("SELECT name FROM vr_write_back")} | set(configured)
    return tuple(k for k in WRITE_BACK if k in on)


def set_write_back(db: Database, name: str, on: bool, by: int | None) -> None:
    """Switch one kind of write-back on or off (an admin's choice); InvalidInput for others."""
    if name not in WRITE_BACK:
        raise InvalidInput(f"write-back: {name[:20]!r} is not one of {', '.join(WRITE_BACK)}")
    with dbmod.write(db):
        if on:
            db.execute(
                "INSERT OR IGNORE INTO vr_write_back (name, enabled_by, enabled_at) VALUES (?, ?, ?)",
                [name, by, time.time()],
            )
        else:
            db.execute("DELETE FROM vr_write_back WHERE name = ?", [name])
    log.info("VR write-back of %s switched %s by user %s", name, "on" if on else "off", by)


def user_tag_names(values: Any) -> list[str] | None:
    """Return the user tag names of HereSphere's tags (untimed, `Tag:` or no category), or None
    when the value is not a list of tag objects."""
    if not isinstance(values, list):
        return None
    names: list[str] = []
    for tag in values:
        if not isinstance(tag, Mapping) or not isinstance(tag.get("name"), str):
            return None
        name = tag["name"]
        category, colon, rest = name.partition(":")
        if colon and category != "Tag":
            continue  # Marker:… and other categories are not user tags
        if tag.get("start") or tag.get("end"):
            continue  # a timed tag: a marker
        name = (rest if colon else name).strip()
        if name:
            names.append(name)
    return names


def write_back(
    db: Database,
    cache: metacache.MetaCache,
    user: users.User,
    media_id: int,
    media_hash: str,
    body: Mapping[str, Any],
    enabled: tuple[str, ...],
) -> WriteResult:
    """Apply the rating, favourite and tags a HereSphere request carries, each only when
    `enabled` names it (and tags only for accounts that may change shared tags)."""
    changed: list[str] = []
    refused: list[str] = []
    if "rating" in body:
        value = body["rating"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 5:
            raise InvalidInput("rating: expected a number from 0 to 5")
        if "rating" in enabled:
            stars = 0 if value == 0 else max(1, int(value + 0.5))  # a half star is one
            ratings.rate(db, cache, media_hash, user.id, stars or None)
            changed.append("rating")
        else:
            refused.append("rating")
    if "isFavorite" in body:
        value = body["isFavorite"]
        if not isinstance(value, bool):
            raise InvalidInput("isFavorite: expected true or false")
        if "favorite" in enabled:
            favorites.set_favorite(db, cache, media_id, user.id, value)
            changed.append("favorite")
        else:
            refused.append("favorite")
    if "tags" in body:
        names = user_tag_names(body["tags"])
        if names is None:
            raise InvalidInput("tags: expected a list of {name, start, end, track, rating}")
        if "tags" in enabled and user.may_edit_metadata:
            wanted = {tags.normalize(n) for n in names} - {""}
            have = set(tags.tags_of(db, cache, media_id))
            if wanted - have:
                tags.change(db, cache, [media_id], sorted(wanted - have), add=True)
            if have - wanted:
                tags.change(db, cache, [media_id], sorted(have - wanted), add=False)
            changed.append("tags")
        else:
            refused.append("tags")
    if refused:
        log.info(
            "VR write-back of %s by user %d refused: switched off", ", ".join(refused), user.id
        )
    return WriteResult(tuple(changed), tuple(refused))
