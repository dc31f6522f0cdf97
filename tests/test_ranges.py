"""RFC 9110 Range and conditional decisions (services/playback/ranges.py), without Flask.

The first table is Go's net/http ServeFileRangeTests (an 11-byte file) with the cases where we
decide differently marked; the rest are the cases Werkzeug and Go get wrong or leave open.
"""

from __future__ import annotations

import email.utils

import pytest

from services.playback import ranges
from services.playback.ranges import Answer, ByteRange, Validators

SIZE = 11  # Go's testFileLen
T = 1_700_000_000  # the file's Last-Modified, Unix seconds
V = Validators('"abc"', T)


def date(seconds: int) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


def decide(headers: dict[str, str], method: str = "GET", size: int = SIZE) -> Answer:
    return ranges.decide(method, headers, size, V)


def spans(answer: Answer) -> list[tuple[int, int]]:
    return [(r.start, r.end) for r in answer.ranges]


# (Range header, status, inclusive ranges) — Go's table, then ours.
RANGE_TABLE = [
    ("bytes=0-4", 206, [(0, 4)]),
    ("bytes=2-", 206, [(2, 10)]),
    ("bytes=-5", 206, [(6, 10)]),
    ("bytes=3-7", 206, [(3, 7)]),
    ("bytes=0-0,-2", 206, [(0, 0), (9, 10)]),
    ("bytes=0-1,5-8", 206, [(0, 1), (5, 8)]),
    ("bytes=0-1,5-", 206, [(0, 1), (5, 10)]),
    ("bytes=5-1000", 206, [(5, 10)]),
    # Go answers 200 ("wasteful"); overlapping ranges are coalesced here, leaving one range.
    ("bytes=0-,1-,2-,3-,4-", 206, [(0, 10)]),
    ("bytes=0-9", 206, [(0, 9)]),
    ("bytes=0-10", 206, [(0, 10)]),
    ("bytes=0-11", 206, [(0, 10)]),
    ("bytes=10-11", 206, [(10, 10)]),
    ("bytes=10-", 206, [(10, 10)]),
    ("bytes=11-", 416, []),
    ("bytes=11-12", 416, []),
    ("bytes=12-12", 416, []),
    ("bytes=11-100", 416, []),
    ("bytes=12-100", 416, []),
    ("bytes=100-", 416, []),
    ("bytes=100-1000", 416, []),
    # A zero-length suffix is unsatisfiable (RFC 9110 §14.1.1); Werkzeug answers it with 200.
    ("bytes=-0", 416, []),
    ("bytes=-0,-0", 416, []),
    # Unsatisfiable members are dropped when another one is satisfiable.
    ("bytes=-0,0-1", 206, [(0, 1)]),
    ("bytes=20-,0-1", 206, [(0, 1)]),
    # A suffix longer than the file is the whole file.
    ("bytes=-20", 206, [(0, 10)]),
    ("bytes=-11", 206, [(0, 10)]),
    # Unknown units are ignored (§14.2 "MUST ignore"): Go answers 416.
    ("items=0-1", 200, []),
    ("none", 200, []),
    ("bytes 0-1", 200, []),
    # Units compare case-insensitively (§14.1).
    ("BYTES=0-1", 206, [(0, 1)]),
    # Invalid range sets are ignored, not rejected.
    ("bytes=5-2", 200, []),
    ("bytes=abc", 200, []),
    ("bytes=", 200, []),
    ("bytes=,", 200, []),
    ("bytes=0-1,x", 200, []),
    ("bytes=+1-2", 200, []),
    ("bytes=1-+2", 200, []),
    ("bytes=0x1-2", 200, []),
    ("bytes=1_0-20", 200, []),
    ("bytes=\u0661-\u0662", 200, []),  # Arabic-Indic digits: int() would take them
    ("bytes=--1", 200, []),
    ("bytes=1--2", 200, []),
    # Empty list elements and spaces around members are allowed (§5.6.1).
    ("bytes=0-1,", 206, [(0, 1)]),
    ("bytes= 0-1 , 3-4", 206, [(0, 1), (3, 4)]),
    # Overlapping, adjacent and unordered ranges: coalesced and sorted.
    ("bytes=0-4,2-6", 206, [(0, 6)]),
    ("bytes=0-1,2-3", 206, [(0, 3)]),
    ("bytes=5-6,0-1", 206, [(0, 1), (5, 6)]),
    ("bytes=-3,0-9", 206, [(0, 10)]),
    # Numbers past any file size: no overflow, no slow int().
    ("bytes=0-" + "9" * 5000, 206, [(0, 10)]),
    ("bytes=" + "9" * 5000 + "-", 416, []),
    ("bytes=-" + "9" * 5000, 206, [(0, 10)]),
]


@pytest.mark.parametrize(("header", "status", "expected"), RANGE_TABLE)
def test_range_table(header: str, status: int, expected: list[tuple[int, int]]) -> None:
    answer = decide({"Range": header})
    assert (answer.status, spans(answer)) == (status, expected)
    assert answer.multipart == (len(expected) > 1)


def test_no_range_is_the_whole_file() -> None:
    assert decide({}) == Answer(200)


def test_empty_file_satisfies_no_range() -> None:
    assert decide({"Range": "bytes=0-"}, size=0).status == 416
    assert decide({"Range": "bytes=-1"}, size=0).status == 416
    assert decide({}, size=0).status == 200


def test_many_disjoint_ranges_fall_back_to_the_whole_file() -> None:
    many = lambda n: "bytes=" + ",".join(f"{i * 4}-{i * 4 + 1}" for i in range(n))  # noqa: E731
    assert decide({"Range": many(ranges.MAX_PARTS)}, size=1000).status == 206
    assert len(decide({"Range": many(ranges.MAX_PARTS)}, size=1000).ranges) == ranges.MAX_PARTS
    assert decide({"Range": many(ranges.MAX_PARTS + 1)}, size=1000) == Answer(200)
    # The "Apache killer": hundreds of overlapping ranges collapse into one.
    killer = "bytes=0-," + ",".join(f"5-{i}" for i in range(5, 900))
    assert spans(decide({"Range": killer}, size=1000)) == [(0, 999)]


CONDITIONAL_TABLE = [
    # If-None-Match: weak comparison; a match answers 304.
    ({"If-None-Match": '"abc"'}, 304),
    ({"If-None-Match": 'W/"abc"'}, 304),
    ({"If-None-Match": '"x", "abc"'}, 304),
    ({"If-None-Match": '"x",W/"abc"'}, 304),
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": '"x"'}, 200),
    ({"If-None-Match": '"abc'}, 200),  # malformed: no match
    ({"If-None-Match": "abc"}, 200),
    # If-None-Match with a Range: the 304 wins (§13.2.2, preconditions before Range).
    ({"If-None-Match": '"abc"', "Range": "bytes=0-1"}, 304),
    ({"If-None-Match": '"x"', "Range": "bytes=0-1"}, 206),
    # If-Modified-Since: only without If-None-Match.
    ({"If-Modified-Since": date(T)}, 304),
    ({"If-Modified-Since": date(T + 60)}, 304),
    ({"If-Modified-Since": date(T - 1)}, 200),
    ({"If-Modified-Since": "Tue Nov 14 22:13:20 2023"}, 304),  # asctime form of T
    ({"If-Modified-Since": "Tuesday, 14-Nov-23 22:13:20 GMT"}, 304),  # RFC 850 form of T
    ({"If-Modified-Since": "yesterday"}, 200),
    ({"If-Modified-Since": ""}, 200),
    ({"If-None-Match": '"x"', "If-Modified-Since": date(T + 60)}, 200),
    ({"If-Modified-Since": date(T), "Range": "bytes=0-1"}, 304),
    # If-Match: strong comparison; a miss answers 412.
    ({"If-Match": '"abc"'}, 200),
    ({"If-Match": "*"}, 200),
    ({"If-Match": '"x", "abc"'}, 200),
    ({"If-Match": '"x"'}, 412),
    ({"If-Match": 'W/"abc"'}, 412),
    ({"If-Match": '"abc"', "Range": "bytes=0-1"}, 206),
    # If-Unmodified-Since: only without If-Match.
    ({"If-Unmodified-Since": date(T)}, 200),
    ({"If-Unmodified-Since": date(T - 1)}, 412),
    ({"If-Unmodified-Since": "garbage"}, 200),
    # Dates whose numbers overflow a C long or int (year, zone) are invalid, not a 500.
    ({"If-Unmodified-Since": "Mon, 01 Jan 9999999999999999999999 00:00:00 GMT"}, 200),
    ({"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 +99999999999999999"}, 200),
    ({"If-Range": "Nov +99999999999999999 0 00:00:00 0 GMT", "Range": "bytes=0-1"}, 200),
    ({"If-Match": '"abc"', "If-Unmodified-Since": date(T - 1)}, 200),
    # If-Match fails before If-None-Match is looked at.
    ({"If-Match": '"x"', "If-None-Match": '"abc"'}, 412),
    # If-Range: a strong tag or the exact date keeps the Range, anything else sends it all.
    ({"If-Range": '"abc"', "Range": "bytes=0-1"}, 206),
    ({"If-Range": 'W/"abc"', "Range": "bytes=0-1"}, 200),  # weak never matches: Werkzeug's bug
    ({"If-Range": '"x"', "Range": "bytes=0-1"}, 200),
    ({"If-Range": date(T), "Range": "bytes=0-1"}, 206),
    ({"If-Range": date(T - 1), "Range": "bytes=0-1"}, 200),
    ({"If-Range": date(T + 1), "Range": "bytes=0-1"}, 200),
    ({"If-Range": "garbage", "Range": "bytes=0-1"}, 200),
    ({"If-Range": '"x"', "Range": "bytes=20-"}, 200),  # a failed If-Range also skips the 416
    ({"If-Range": '"x"'}, 200),  # ignored without a Range
    ({"If-Range": '"abc"', "Range": "bytes=20-"}, 416),
]


@pytest.mark.parametrize(("headers", "status"), CONDITIONAL_TABLE)
def test_conditional_table(headers: dict[str, str], status: int) -> None:
    assert decide(headers).status == status


def test_head_answers_as_get_would() -> None:
    assert decide({"Range": "bytes=0-1"}, method="HEAD") == Answer(206, (ByteRange(0, 1),))
    assert decide({"If-None-Match": '"abc"'}, method="HEAD").status == 304


def test_range_is_only_for_get_and_head() -> None:
    assert decide({"Range": "bytes=0-1"}, method="POST") == Answer(200)


def test_etag_changes_with_size_and_mtime() -> None:
    tag = ranges.make_etag("0123456789abcdef", 10, 5)
    assert tag.startswith('"') and tag.endswith('"') and "W/" not in tag
    assert tag != ranges.make_etag("0123456789abcdef", 11, 5)
    assert tag != ranges.make_etag("0123456789abcdef", 10, 6)


def test_http_dates_round_trip() -> None:
    assert ranges.http_date(T) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert ranges.parse_http_date(ranges.http_date(T)) == T
    assert ranges.parse_http_date(None) is None


def test_multipart_body_length_matches_its_parts() -> None:
    byte_ranges = (ByteRange(0, 1), ByteRange(5, 8))
    parts, tail, total = ranges.multipart(byte_ranges, SIZE, "video/mp4", "BOUNDARY")
    body = b"".join(p.head + b"x" * p.range.length for p in parts) + tail
    assert len(body) == total
    assert body.startswith(b"--BOUNDARY\r\nContent-Type: video/mp4\r\n")
    assert b"Content-Range: bytes 5-8/11\r\n\r\nxxxx\r\n--BOUNDARY--\r\n" in body
