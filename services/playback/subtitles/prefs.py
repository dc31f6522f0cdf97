"""Each person's subtitle and audio choice, and the tracks it picks on the next video.

A choice in the player's menu is saved as a preference (subtitles on or off, in which language;
which audio language), so the next episode starts the same way. With subtitles off, forced
subtitles (the foreign-language parts only) in the person's language still show by themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput
from services.library import languages
from services.playback.subtitles.tracks import AudioTrack, SubtitleTrack, Tracks


@dataclass(frozen=True)
class Prefs:
    """A person's playback preferences."""

    subtitles_on: bool = False
    subtitle_language: str | None = None  # BCP 47
    audio_language: str | None = None  # BCP 47


@dataclass(frozen=True)
class Choice:
    """The tracks a video starts with for a person."""

    subtitle: SubtitleTrack | None
    audio: AudioTrack | None  # None: the file's default


def get(db: Database, user_id: int) -> Prefs:
    row = db.execute(
        "SELECT subtitles_on, subtitle_language, audio_language FROM playback_prefs "
        "WHERE user_id = ?",
        [user_id],
    ).fetchone()
    return Prefs(bool(row[0]), row[1], row[2]) if row else Prefs()


def _language(value: str | None, what: str) -> str | None:
    if value in (None, ""):
        return None
    found = languages.tag(value)
    if found is None:
        raise InvalidInput(f"{what}: unknown language {value[:20]!r}")
    return found


def save(
    db: Database,
    user_id: int,
    *,
    subtitles_on: str | None = None,
    subtitle_language: str | None = None,
    audio_language: str | None = None,
) -> Prefs:
    """Update the fields given (form strings); return the preferences now."""
    old = get(db, user_id)
    on = old.subtitles_on
    if subtitles_on is not None:
        if subtitles_on not in ("0", "1"):
            raise InvalidInput("subtitles_on must be 0 or 1")
        on = subtitles_on == "1"
    sub_lang = old.subtitle_language
    if subtitle_language is not None:
        sub_lang = _language(subtitle_language, "subtitle_language") or sub_lang
    audio_lang = old.audio_language
    if audio_language is not None:
        audio_lang = _language(audio_language, "audio_language") or audio_lang
    with dbmod.write(db):
        db.execute(
            "INSERT INTO playback_prefs (user_id, subtitles_on, subtitle_language, audio_language, "
            "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "subtitles_on = excluded.subtitles_on, subtitle_language = excluded.subtitle_language, "
            "audio_language = excluded.audio_language, updated_at = excluded.updated_at",
            [user_id, int(on), sub_lang, audio_lang, time.time()],
        )
    return Prefs(on, sub_lang, audio_lang)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.partition("-")[0] == b.partition("-")[0]  # type: ignore[union-attr]


def choose(tracks: Tracks, prefs: Prefs, fallback_language: str | None = None) -> Choice:
    """Pick the subtitle and audio tracks a video starts with for these preferences.

    Subtitles on: the preferred language's full track (not forced; SDH only when nothing else),
    text before picture. Off, or no full track in that language: a forced text track in the
    person's language (the subtitle language, else the audio language, else
    `fallback_language`, the browser's) shows by itself.
    """
    usable = [t for t in tracks.subtitles if t.usable]
    wanted = prefs.subtitle_language or prefs.audio_language or languages.tag(fallback_language)
    subtitle = None
    if prefs.subtitles_on and wanted:
        same = [t for t in usable if _same(t.language, wanted)]
        ranked = sorted(same, key=lambda t: (t.forced, t.sdh, t.kind != "text", not t.default))
        subtitle = ranked[0] if ranked else None
    if subtitle is None and wanted:
        forced = [t for t in usable if t.forced and t.kind == "text" and _same(t.language, wanted)]
        subtitle = forced[0] if forced else None
    audio = None
    if prefs.audio_language:
        audio = next((a for a in tracks.audio if _same(a.language, prefs.audio_language)), None)
    return Choice(subtitle, audio)
