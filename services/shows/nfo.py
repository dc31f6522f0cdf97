"""Kodi/Jellyfin `.nfo` files: movie, tvshow and episodedetails, read safely.

An .nfo is XML written by tinyMediaManager, Radarr, Sonarr, Jellyfin or a person. It is read
with defusedxml and `forbid_dtd`: a document type declaration is refused outright, so entity
expansion (billion laughs) and external entities never happen, and files above MAX_BYTES are
refused before they are read. A file that fails says why (NfoError), and is recorded so.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BYTES = 1 << 20  # 1 MiB: real .nfo files are a few KiB, with long cast lists tens of KiB
MAX_TEXT = 20_000  # characters kept of a plot
MAX_LIST = 50  # genres, studios, tags kept
MAX_PEOPLE = 100
ROOTS = ("movie", "tvshow", "episodedetails")
_YEAR_RE = re.compile(r"^(\d{4})")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class NfoError(Exception):
    """An .nfo that cannot be used, with the reason."""


@dataclass(frozen=True)
class Person:
    name: str
    role: str | None
    kind: str  # actor | director | writer


@dataclass(frozen=True)
class Nfo:
    """What an .nfo says."""

    kind: str  # movie | tvshow | episodedetails
    title: str | None = None
    original_title: str | None = None
    sort_title: str | None = None
    year: int | None = None
    plot: str | None = None
    tagline: str | None = None
    runtime: int | None = None
    premiered: str | None = None
    rating: float | None = None
    season: int | None = None
    episode: int | None = None
    genres: tuple[str, ...] = ()
    studios: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    people: tuple[Person, ...] = ()
    uniqueids: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict:
        """Return the columns of the `nfo` table."""
        return {
            "kind": self.kind,
            "title": self.title,
            "original_title": self.original_title,
            "sort_title": self.sort_title,
            "year": self.year,
            "plot": self.plot,
            "tagline": self.tagline,
            "runtime": self.runtime,
            "premiered": self.premiered,
            "rating": self.rating,
            "season": self.season,
            "episode": self.episode,
            "genres": json.dumps(list(self.genres)),
            "studios": json.dumps(list(self.studios)),
            "tags": json.dumps(list(self.tags)),
            "people": json.dumps([p.__dict__ for p in self.people]),
            "uniqueids": json.dumps(self.uniqueids),
        }


def read(path: bytes | str) -> Nfo:
    """Read and parse the .nfo at path; raise NfoError with a reason, OSError when unreadable."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > MAX_BYTES:
            raise NfoError(f"too large ({size} bytes; at most {MAX_BYTES})")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise NfoError(f"too large (more than {MAX_BYTES} bytes)")
    return parse(data)


def parse(data: bytes) -> Nfo:
    """Parse .nfo bytes; raise NfoError for what is not a usable movie/tvshow/episode document."""
    if len(data) > MAX_BYTES:
        raise NfoError(f"too large ({len(data)} bytes; at most {MAX_BYTES})")
    head = data.lstrip()[:1]
    if head != b"<":
        raise NfoError("not XML (a link-only .nfo is not read)")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise NfoError(
            f"refused: {type(exc).__name__} (DTDs and entities are not allowed)"
        ) from None
    except ET.ParseError as exc:
        raise NfoError(f"malformed XML: {exc}") from None
    kind = root.tag.lower() if isinstance(root.tag, str) else ""
    if kind not in ROOTS:
        raise NfoError(f"unknown root element <{kind[:40]}> (want movie, tvshow or episodedetails)")
    return _read(root, kind)


def _text(root: ET.Element, tag: str, limit: int = 500) -> str | None:
    el = root.find(tag)
    if el is None or el.text is None:
        return None
    text = " ".join(el.text.split()) if limit <= 500 else el.text.strip()
    return text[:limit] or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    m = re.match(r"^\s*(-?\d{1,6})", value)
    return int(m.group(1)) if m else None


def _rating(root: ET.Element) -> float | None:
    """Return the default rating (Kodi's <ratings><rating default="true">), else <rating>."""
    best = None
    for el in root.iter("rating"):
        value = el.find("value")
        raw = value.text if value is not None else el.text
        try:
            number = float((raw or "").strip())
        except ValueError:
            continue
        scale = float(el.get("max") or 10) or 10
        number = round(number * 10 / scale, 1) if scale != 10 else number
        if not 0 <= number <= 10:
            continue
        if el.get("default") == "true":
            return number
        if best is None:
            best = number
    return best


def _list(root: ET.Element, tag: str) -> tuple[str, ...]:
    out: list[str] = []
    for el in root.findall(tag):
        for part in (el.text or "").split(" / "):
            part = " ".join(part.split())[:100]
            if part and part not in out:
                out.append(part)
    return tuple(out[:MAX_LIST])


def _people(root: ET.Element) -> tuple[Person, ...]:
    out: list[Person] = []
    for actor in root.findall("actor"):
        name = _text(actor, "name", 200)
        if name:
            out.append(Person(name, _text(actor, "role", 200), "actor"))
    for tag, kind in (("director", "director"), ("credits", "writer")):
        for name in _list(root, tag):
            out.append(Person(name, None, kind))
    return tuple(out[:MAX_PEOPLE])


def _ids(root: ET.Element) -> dict[str, str]:
    ids: dict[str, str] = {}
    for el in root.findall("uniqueid"):
        kind = (el.get("type") or "unknown").lower()[:20]
        if el.text and el.text.strip():
            ids.setdefault(kind, el.text.strip()[:100])
    for tag in ("imdbid", "tmdbid", "tvdbid", "id"):
        value = _text(root, tag, 100)
        if value:
            key = {"imdbid": "imdb", "tmdbid": "tmdb", "tvdbid": "tvdb"}.get(tag)
            if key is None:
                key = "imdb" if value.startswith("tt") else "unknown"
            ids.setdefault(key, value)
    return ids


def _read(root: ET.Element, kind: str) -> Nfo:
    premiered = _text(root, "premiered") or _text(root, "aired")
    if premiered and not _DATE_RE.match(premiered):
        premiered = None
    year = _int(_text(root, "year"))
    if (year is None or not 1870 <= year <= 2200) and premiered:
        year = int(premiered[:4])
    if year is not None and not 1870 <= year <= 2200:
        year = None
    return Nfo(
        kind=kind,
        title=_text(root, "title"),
        original_title=_text(root, "originaltitle"),
        sort_title=_text(root, "sorttitle"),
        year=year,
        plot=_text(root, "plot", MAX_TEXT) or _text(root, "outline", MAX_TEXT),
        tagline=_text(root, "tagline"),
        runtime=_int(_text(root, "runtime")),
        premiered=premiered,
        rating=_rating(root),
        season=_int(_text(root, "season")),
        episode=_int(_text(root, "episode")),
        genres=_list(root, "genre"),
        studios=_list(root, "studio"),
        tags=_list(root, "tag"),
        people=_people(root),
        uniqueids=_ids(root),
    )
