"""What a name says about a show or an episode: title keys, sort titles, season folders.

Two spellings of one title share a key ("Marvel's Agents of S.H.I.E.L.D."); a title sorts
without its leading article; "Season 02" and "Specials" folders name seasons; S01E01-E02 files
hold several episodes.
"""

from __future__ import annotations

import re

SEASON_FOLDER_RE = re.compile(
    r"^(?:season|series|staffel|saison|temporada|stagione|seizoen)[ ._-]*(\d{1,3})\b|^s(\d{1,3})$",
    re.IGNORECASE,
)
SPECIALS_RE = re.compile(r"^(?:specials?|season[ ._-]*0+)$", re.IGNORECASE)
_MULTI_SXE_RE = re.compile(r"[sS]\d{1,3}[ ._]?[eE](\d{1,4})((?:[-_ ]?[eE]\d{1,4}|-\d{1,4}\b)+)")
_MULTI_NXM_RE = re.compile(r"\b\d{1,2}x(\d{2,3})((?:[-_]?x\d{2,3}|-\d{1,2}x\d{2,3})+)")
_LAST_NUMBER_RE = re.compile(r"(\d{1,4})\D*$")
_KEY_RE = re.compile(r"[\W_]+", re.UNICODE)
_ARTICLES = ("the ", "a ", "an ")


def title_key(title: str) -> str:
    """Return the key two spellings of one title share ("Marvel's Agents of S.H.I.E.L.D.")."""
    key = _KEY_RE.sub("", title.casefold())
    return key or title.casefold().strip()


def sort_title(title: str) -> str:
    """Return the title to sort by: without a leading article."""
    low = title.lower()
    for article in _ARTICLES:
        if low.startswith(article) and len(title) > len(article):
            return title[len(article) :]
    return title


def episode_end(name: str, first: int | None) -> int | None:
    """Return the last episode of a multi-episode file (S01E01-E02, S01E01E02, 1x01-1x02)."""
    if first is None:
        return None
    for regex in (_MULTI_SXE_RE, _MULTI_NXM_RE):
        m = regex.search(name)
        if m and int(m.group(1)) == first:
            last = _LAST_NUMBER_RE.search(m.group(2))
            if last:
                end = int(last.group(1))
                if first < end <= first + 20:
                    return end
    return None


def season_of_folder(name: str) -> int | None:
    """Return the season a folder's name stands for ("Season 02" → 2, "Specials" → 0), or None."""
    if SPECIALS_RE.match(name.strip()):
        return 0
    m = SEASON_FOLDER_RE.match(name.strip())
    if m:
        return int(m.group(1) or m.group(2))
    return None
