"""Which version of a film or an episode to open: the best one this browser plays.

A title held in several files (a 4K HEVC and a 1080p H.264) opens the version this browser plays
best, by the play decision of services/playback/decision.py with the capabilities the page
reported: direct play before a remux before a transcode, then the better quality figure. So a
Chromium without an HEVC decoder opens the H.264 file even when the HEVC one is "better", and
Safari, which reports HEVC, the HEVC one. A browser that reported nothing gets the rule of what
every browser plays (decision.EVERY_BROWSER).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from sqlite_utils import Database

from services.errors import LVSError
from services.playback import decision, media_files, source
from services.shows.upnext import Version

log = logging.getLogger(__name__)

_RANK = {decision.Method.DIRECT: 0, decision.Method.REMUX: 1, decision.Method.TRANSCODE: 2}
_CANNOT = 3  # a version that cannot be opened or played at all: last


def method(
    db: Database, version: Version, caps: decision.Capabilities, roots: Iterable[Path]
) -> decision.Method | None:
    """Return how this browser would play this version (None when it cannot be opened)."""
    try:
        media = media_files.open_media(db, version.media_hash, roots)
    except LVSError:
        return None
    with media.file as f:
        st = media.stat
        try:
            src = source.load(db, version.media_hash, f.fileno(), (st.st_size, st.st_mtime_ns))
            return decision.decide(src, caps, decision.parse_choice({}, src)).method
        except LVSError as exc:
            log.info("version %s cannot be played: %s", version.media_hash, exc)
            return None


def best(
    db: Database, versions: list[Version], caps: decision.Capabilities, roots: Iterable[Path]
) -> Version:
    """Return the version to open: the best way to play first, then the best quality.

    `versions` come best quality first (upnext.versions); the first of them wins a tie.
    """
    if len(versions) == 1:
        return versions[0]
    roots = list(roots)
    ranked = []
    for i, v in enumerate(versions):
        how = method(db, v, caps, roots)
        ranked.append((_RANK.get(how, _CANNOT) if how is not None else _CANNOT, i, v))
        if ranked[-1][0] == 0:
            break  # direct play of the best such version: nothing after it can beat it
    return min(ranked)[2]
