"""Range and conditional requests (RFC 9110 §13, §14) as pure functions: what to answer, not how.

`decide()` turns a request's method and headers plus the file's size and validators into an
`Answer`: 200 (whole file), 206 (one range, or several as multipart/byteranges), 304, 412 or 416.
The blueprint turns the answer into bytes on the wire. Decisions where RFC 9110 leaves a choice, or
where Werkzeug and Go's net/http differ from it, each tested in tests/test_ranges.py:

- Preconditions come first, in §13.2.2's order: If-Match, If-Unmodified-Since, If-None-Match,
  If-Modified-Since. So If-None-Match with a Range answers 304, not 206.
- An unknown range unit (`items=0-1`) is ignored (§14.2: "MUST ignore"): 200 with the whole file.
  So is a syntactically invalid range set (`bytes=5-2`, `bytes=abc`, `bytes=+1-2`): §14.2 allows
  ignoring or rejecting it; ignoring never breaks a client that would have been happy with 200.
- A range set with no satisfiable range answers 416 with `Content-Range: bytes */SIZE`: a first
  position at or past the end, and `bytes=-0` (§14.1.1: a suffix range needs a non-zero length).
- Several ranges: overlapping or adjacent ones are coalesced (§14.1.2 allows it; this is what
  defuses the "Apache killer" overlap attack). One range left → a plain 206. Two to MAX_PARTS →
  206 multipart/byteranges, in ascending order. More than MAX_PARTS → the range set is ignored
  and the whole file is sent (200), as §14.2 allows for "many small ranges".
- If-Range: an entity tag matches only by strong comparison, so a weak tag (`W/"…"`) never matches
  and the whole file is sent; a date matches only when it equals Last-Modified exactly. An If-Range
  without a Range is ignored.
- HEAD answers what GET would, headers only (§9.3.2), so a HEAD with a Range gets 206 headers, as
  Go's net/http does. Range handling applies to GET and HEAD only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Protocol

MAX_PARTS = 16  # disjoint ranges served as multipart; more and the whole file is sent instead
_HUGE = 10**18  # a position longer than 18 digits is past the end of any file
CRLF = "\r\n"

_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_ONE_RANGE = re.compile(r"bytes=([0-9]{1,18})-([0-9]{1,18})")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
_ETAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range inside a file: `start` to `end`, both within [0, size)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """Return the Content-Range value for this range of a file of `size` bytes."""
        return f"bytes {self.start}-{self.end}/{size}"


@dataclass(frozen=True)
class Validators:
    """What a client can compare against: a strong entity tag and the modification time."""

    etag: str  # quoted, strong: '"…"'
    last_modified: int  # Unix seconds (HTTP dates have one-second resolution)

    @property
    def http_date(self) -> str:
        return http_date(self.last_modified)


@dataclass(frozen=True)
class Answer:
    """How to answer: status, and the ranges to send for a 206 (several: multipart)."""

    status: int  # 200 | 206 | 304 | 412 | 416
    ranges: tuple[ByteRange, ...] = ()

    @property
    def multipart(self) -> bool:
        return len(self.ranges) > 1


def make_etag(media_hash: str, size: int, mtime_ns: int) -> str:
    """Return a strong entity tag for these exact bytes: content hash, size and modification time.

    The oshash alone does not cover a file's middle, so a file rewritten in place keeps its
    media_hash; size and mtime_ns change with it, and with them the tag.
    """
    return f'"{media_hash}-{size:x}-{mtime_ns:x}"'


def http_date(seconds: float) -> str:
    """Return an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`)."""
    return _http_date(int(seconds))


@functools.lru_cache(maxsize=1024)  # asked on every range request, for a few files' mtimes
def _http_date(seconds: int) -> str:
    return format_datetime(datetime.fromtimestamp(seconds, UTC), usegmt=True)


def parse_http_date(value: str | None) -> int | None:
    """Return Unix seconds of an HTTP-date (any of §5.6.7's three formats), None if invalid."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (ValueError, TypeError, IndexError, OverflowError):  # Overflow: a 25-digit year
        return None
    if when.tzinfo is None:  # asctime() format carries no zone; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _pos(digits: str) -> int:
    # int() of thousands of digits is slow and Python refuses past 4300; no file is that big.
    return int(digits) if len(digits) <= 18 else _HUGE


def parse_range(value: str, size: int) -> tuple[ByteRange, ...] | None:
    """Return the satisfiable ranges of a Range value for a file of `size` bytes.

    The result is sorted with overlapping and adjacent ranges coalesced; empty when no range is
    satisfiable (answer 416); None when the header is to be ignored (unknown unit, bad syntax).
    """
    if m := _ONE_RANGE.fullmatch(value):  # `bytes=A-B`, what players send: the same answer
        first, last = int(m[1]), int(m[2])
        if last < first:
            return None
        return (ByteRange(first, min(last, size - 1)),) if first < size else ()
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    found: list[ByteRange] = []
    elements = [e.strip(" \t") for e in spec.split(",")]
    if not any(elements):
        return None
    for element in elements:
        if not element:
            continue  # §5.6.1: a recipient accepts empty list elements
        if m := _INT_RANGE.fullmatch(element):
            first = _pos(m[1])
            last = _pos(m[2]) if m[2] else None
            if last is not None and last < first:
                return None  # invalid range-spec: the whole set is invalid
            if first < size:
                found.append(ByteRange(first, min(last if last is not None else size, size - 1)))
        elif m := _SUFFIX_RANGE.fullmatch(element):
            length = _pos(m[1])
            if length > 0 and size > 0:
                found.append(ByteRange(max(0, size - length), size - 1))
        else:
            return None
    return coalesce(found)


def coalesce(ranges: list[ByteRange]) -> tuple[ByteRange, ...]:
    """Return the ranges sorted, with overlapping and adjacent ones merged."""
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: r.start):
        if merged and r.start <= merged[-1].end + 1:
            merged[-1] = ByteRange(merged[-1].start, max(merged[-1].end, r.end))
        else:
            merged.append(r)
    return tuple(merged)


def _etags(value: str) -> list[tuple[bool, str]] | None:
    """Return (weak, opaque-tag) pairs of an entity-tag list; None for `*`; [] when malformed."""
    if value.strip() == "*":
        return None
    tags: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(value):
        m = _ETAG.match(value, pos)
        if not m or m.end() == pos:
            if value[pos:].strip(" \t,"):
                return tags  # stop at the first malformed member, keeping what came before
            break
        tags.append((bool(m[1]), m[2]))
        pos = m.end()
    return tags


def _strong_match(value: str, etag: str) -> bool:
    tags = _etags(value)
    return tags is None or any(not weak and tag == etag for weak, tag in tags)


def _weak_match(value: str, etag: str) -> bool:
    opaque = etag.removeprefix("W/")
    tags = _etags(value)
    return tags is None or any(tag == opaque for _, tag in tags)


def _if_range_holds(value: str, v: Validators) -> bool:
    value = value.strip()
    if value.startswith(('"', "W/")):
        # §13.1.5: "the comparison function is strong", and a weak tag can never match.
        return not value.startswith("W/") and value == v.etag
    date = parse_http_date(value)
    return date is not None and date == v.last_modified


class Headers(Protocol):
    """A request's headers, looked up by name as HTTP does (case-insensitively)."""

    def get(self, name: str, default: str | None = None, /) -> str | None: ...


def decide(method: str, headers: Headers, size: int, v: Validators) -> Answer:
    """Return how to answer a GET or HEAD for a file of `size` bytes with validators `v`.

    `headers` must look names up as HTTP does (case-insensitively, e.g. Werkzeug's Headers) or
    use the canonical capitalisation ("If-None-Match").
    """
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _strong_match(if_match, v.etag):
            return Answer(412)
    else:
        since = parse_http_date(headers.get("If-Unmodified-Since"))
        if since is not None and v.last_modified > since:
            return Answer(412)
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _weak_match(if_none_match, v.etag):
            return Answer(304)
    else:
        since = parse_http_date(headers.get("If-Modified-Since"))
        if since is not None and v.last_modified <= since:
            return Answer(304)
    range_value = headers.get("Range")
    if method not in ("GET", "HEAD") or range_value is None:
        return Answer(200)
    if_range = headers.get("If-Range")
    if if_range is not None and not _if_range_holds(if_range, v):
        return Answer(200)
    ranges = parse_range(range_value, size)
    if ranges is None or len(ranges) > MAX_PARTS:
        return Answer(200)
    if not ranges:
        return Answer(416)
    return Answer(206, ranges)


@dataclass(frozen=True)
class Part:
    """One part of a multipart/byteranges body: its header block, then the file's bytes."""

    head: bytes
    range: ByteRange


def multipart(
    ranges: tuple[ByteRange, ...], size: int, content_type: str, boundary: str
) -> tuple[list[Part], bytes, int]:
    """Return the parts, the closing delimiter and the total body length of a multipart answer."""
    parts = [
        Part(
            (
                f"{'' if i == 0 else CRLF}--{boundary}{CRLF}Content-Type: {content_type}{CRLF}"
                f"Content-Range: {r.content_range(size)}{CRLF}{CRLF}"
            ).encode("ascii"),
            r,
        )
        for i, r in enumerate(ranges)
    ]
    tail = f"{CRLF}--{boundary}--{CRLF}".encode("ascii")
    total = sum(len(p.head) + p.range.length for p in parts) + len(tail)
    return parts, tail, total
