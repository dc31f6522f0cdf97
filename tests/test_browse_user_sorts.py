"""The per-user sorts (rating, views) page in exactly the order of (key, file id) on real SQLite.

A folder of a few hundred synthesized rows (the real schema, migrations applied) with two users'
ratings, plays, favourites and tags; every page of every sort, order and filter is walked and
compared with the order computed in Python from the same rows.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services import db as dbmod
from services.browse import browse
from services.browse.cards import RESOLUTIONS
from tests.conftest import make_user, session_token

FOLDER = 2  # the folder walked; folder 3 holds files the users rated too
LISTED = 310  # present, identified files in FOLDER
FILTERS: list[dict[str, str]] = [
    {},
    {"kind": "video"},
    {"unwatched": "1"},
    {"favorite": "1"},
    {"rating": "3"},
    {"rating": "2", "favorite": "1"},
    {"tag": "beach", "codec": "h264"},
    {"resolution": "1080p", "length": "short"},
]


def _ids(filters: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in filters.items()) or "none"


@dataclass
class Lib:
    """The synthesized library: its database, users, and every row a listing reads."""

    data_dir: Path
    root: Path
    alice: int
    bob: int
    files: list[dict[str, Any]] = field(default_factory=list)  # FOLDER's listed files
    stars: dict[int, dict[int, int]] = field(default_factory=dict)  # user -> media -> stars
    plays: dict[int, dict[int, int]] = field(default_factory=dict)  # user -> media -> plays
    watched: dict[int, set[int]] = field(default_factory=dict)
    favorites: dict[int, set[int]] = field(default_factory=dict)
    tagged: set[int] = field(default_factory=set)  # media tagged "beach"


def _synthesize(tmp: Path) -> Lib:
    root = tmp / "library"
    root.mkdir()
    data_dir = tmp / "data"
    db = dbmod.open_db(data_dir)
    alice = make_user(data_dir, "viewer", "alice").id
    bob = make_user(data_dir, "viewer", "bob").id
    lib = Lib(data_dir, root, alice, bob)
    rng = random.Random(8)
    sizes = ((1920, 1080), (1280, 720), (3840, 2160), (640, 480), (1080, 1920), (None, None))
    media, files = [], []
    file_id = 0

    def add_file(folder: int, media_id: int | None, present: int = 1) -> None:
        nonlocal file_id
        file_id += 1
        name = f"{rng.choice('abcdefgh')}-{file_id:04d}.mp4"
        files.append((file_id, media_id, folder, name.encode(), name, file_id * 10, present))

    for mid in range(1, 361):
        picture = rng.random() < 0.15
        w, h = rng.choice(sizes)
        duration = None if picture else rng.choice([30.0, 200.0, 600.0, 3000.0, None])
        codec = None if picture else rng.choice(["h264", "h264", "hevc", "vp9"])
        kind = "picture" if picture else "video"
        media.append((mid, f"{mid:016x}", kind, 1000 + mid, duration, w, h, codec, 1e9 + mid))
    # Ids are interleaved so that a folder's files are not one id range.
    order = list(range(1, 351))
    rng.shuffle(order)
    for mid in order:
        add_file(FOLDER if mid <= 300 else 3, mid)
    for mid in range(1, 11):  # a second file of media 1..10 in FOLDER (duplicates)
        add_file(FOLDER, mid)
    for mid in range(351, 356):  # gone from disk: not listed
        add_file(FOLDER, mid, present=0)
    for _ in range(3):  # not identified yet: not listed
        add_file(FOLDER, None)
    with dbmod.write(db):
        db.execute(
            "INSERT INTO libraries (id, root, name, state, added_at, last_scan_at) "
            "VALUES (1, ?, 'lib', 'online', 0, 0)",
            [str(root)],
        )
        db.execute(
            "INSERT INTO folders (id, library_id, parent_id, path, rel_path, name, file_count) "
            "VALUES (1, 1, NULL, x'', '', '', 0), (2, 1, 1, CAST('big' AS BLOB), 'big', 'big', 0),"
            " (3, 1, 1, CAST('other' AS BLOB), 'other', 'other', 0)"
        )
        db.conn.executemany(
            "INSERT INTO media (id, media_hash, kind, size, probe_status, duration, width, height, "
            "video_codec, added_at) VALUES (?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?)",
            media,
        )
        db.conn.executemany(
            "INSERT INTO files (id, media_id, library_id, folder_id, path, name, size, mtime_ns, "
            "first_seen, present) VALUES (?, ?, 1, ?, ?, ?, 1, ?, 0, ?)",
            files,
        )
        db.execute("INSERT INTO tags (id, name, created_at) VALUES (1, 'beach', 0)")
        for user, n_rated, n_played in ((alice, 90, 80), (bob, 200, 200)):
            rated = rng.sample(range(1, 356), n_rated)
            lib.stars[user] = {m: rng.randint(1, 5) for m in rated}
            played = rng.sample(range(1, 356), n_played)
            # Some rows have a position but no counted play: key 0 like no row at all.
            lib.plays[user] = {m: rng.choice([0, 1, 1, 2, 3, 7]) for m in played}
            lib.watched[user] = {m for m in played if rng.random() < 0.5}
            lib.favorites[user] = set(rng.sample(range(1, 356), 50))
            db.conn.executemany(
                "INSERT INTO ratings (user_id, media_id, stars, rated_at) VALUES (?, ?, ?, 0)",
                [(user, m, s) for m, s in lib.stars[user].items()],
            )
            db.conn.executemany(
                "INSERT INTO watch_state (user_id, media_id, position, play_count, watched) "
                "VALUES (?, ?, 5, ?, ?)",
                [(user, m, n, m in lib.watched[user]) for m, n in lib.plays[user].items()],
            )
            db.conn.executemany(
                "INSERT INTO favorites (user_id, media_id, added_at) VALUES (?, ?, 0)",
                [(user, m) for m in lib.favorites[user]],
            )
        lib.tagged = set(rng.sample(range(1, 356), 120))
        db.conn.executemany(
            "INSERT INTO media_tags (media_id, tag_id) VALUES (?, 1)", [(m,) for m in lib.tagged]
        )
    cursor = db.conn.execute(
        "SELECT f.id, f.media_id, m.kind, m.video_codec AS codec, m.width, m.height, "
        "f.sort_duration FROM files f JOIN media m ON m.id = f.media_id "
        "WHERE f.folder_id = ? AND f.present = 1",
        [FOLDER],
    )
    columns = [d[0] for d in cursor.description]
    lib.files = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    db.close()
    return lib


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Lib:
    return _synthesize(tmp_path_factory.mktemp("user_sorts"))


@pytest.fixture
def db(lib: Lib):
    database = dbmod.connect(lib.data_dir / "library.db")
    yield database
    database.close()


def _keeps(lib: Lib, user: int, f: dict[str, Any], q: dict[str, str]) -> bool:
    """Return whether a file passes the filters, decided in Python from the rows."""
    m = f["media_id"]
    if q.get("kind") and f["kind"] != q["kind"]:
        return False
    if q.get("codec") and f["codec"] != q["codec"]:
        return False
    if q.get("resolution"):
        lo, hi = RESOLUTIONS[q["resolution"]]
        if f["width"] is None or f["height"] is None:
            return False
        if not lo <= min(f["width"], f["height"]) < hi:
            return False
    if q.get("length"):
        lo, hi = browse.LENGTHS[q["length"]]
        if f["kind"] != "video" or not lo <= f["sort_duration"] < hi:
            return False
    if q.get("rating") and lib.stars[user].get(m, 0) < int(q["rating"]):
        return False
    if q.get("tag") and m not in lib.tagged:
        return False
    if q.get("favorite") and m not in lib.favorites[user]:
        return False
    return not (q.get("unwatched") and m in lib.watched[user])


def reference(lib: Lib, user: int, sort: str, order: str, q: dict[str, str]) -> list[int]:
    """Return the file ids in the expected order: (key, id), both in the chosen direction."""
    keys = lib.stars[user] if sort == "rating" else lib.plays[user]
    rows = [(keys.get(f["media_id"], 0), f["id"]) for f in lib.files if _keeps(lib, user, f, q)]
    return [i for _, i in sorted(rows, reverse=order == "desc")]


def walk(db, user: int, query: browse.Query, limit: int = 7) -> list[int]:
    """Return the file ids of every page, following each page's cursor to the end."""
    seen: list[int] = []
    after = None
    for _ in range(LISTED):
        page = browse.folder_page(db, FOLDER, query, user_id=user, after=after, limit=limit)
        seen += [c.file_id for c in page.cards]
        if page.after is None:
            return seen
        assert len(page.cards) == limit
        after = page.after
    raise AssertionError("the walk did not end")


def test_the_library_is_what_the_tests_need(lib: Lib):
    assert len(lib.files) == LISTED
    for user in (lib.alice, lib.bob):
        media = {f["media_id"] for f in lib.files}
        keyed = [m for m in media if lib.stars[user].get(m)]
        assert 40 < len(keyed) < len(media) - 40  # both arms hold many files
        stars = [lib.stars[user][m] for m in keyed]
        assert len(set(stars)) == 5 and len(stars) > len(set(stars))  # ties: the id decides
        assert any(lib.plays[user].get(m) == 0 for m in media)  # a row with key 0
    # A duplicate (two files of one media) shares its key.
    assert len([f for f in lib.files if f["media_id"] <= 10]) == 20


@pytest.mark.parametrize("filters", FILTERS, ids=_ids)
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["rating", "views"])
def test_every_page_in_the_reference_order(lib: Lib, db, sort, order, filters):
    query = browse.Query(sort=sort, order=order, **filters)
    expected = reference(lib, lib.alice, sort, order, filters)
    assert expected or filters  # unfiltered walks are never empty
    seen = walk(db, lib.alice, query)
    assert len(seen) == len(set(seen))
    assert seen == expected


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["rating", "views"])
def test_a_cursor_on_a_keyed_and_on_an_unkeyed_file(lib: Lib, db, sort, order):
    keys = lib.stars[lib.alice] if sort == "rating" else lib.plays[lib.alice]
    ref = reference(lib, lib.alice, sort, order, {})
    media_of = {f["id"]: f["media_id"] for f in lib.files}
    keyed = [i for i, f in enumerate(ref) if keys.get(media_of[f], 0) > 0]
    unkeyed = [i for i, f in enumerate(ref) if keys.get(media_of[f], 0) == 0]
    # Inside each arm, and at both ends of each: the page continues into the other arm or ends.
    positions = {keyed[0], keyed[len(keyed) // 2], keyed[-1], unkeyed[0], unkeyed[3], unkeyed[-1]}
    positions |= {len(ref) - 1, len(ref) - 5}
    query = browse.Query(sort=sort, order=order)
    for i in sorted(positions):
        page = browse.folder_page(db, FOLDER, query, user_id=lib.alice, after=ref[i], limit=10)
        assert [c.file_id for c in page.cards] == ref[i + 1 : i + 11], (i, len(ref))
        assert page.after == (ref[i + 10] if i + 11 < len(ref) else None)


def test_another_users_ratings_and_plays_do_not_leak(lib: Lib, db):
    """Bob rates and plays everything in the folder; Alice's order does not move."""
    before = {
        (sort, order): walk(db, lib.alice, browse.Query(sort=sort, order=order), limit=60)
        for sort in ("rating", "views")
        for order in ("desc", "asc")
    }
    with dbmod.write(db):
        db.execute(
            "INSERT OR REPLACE INTO ratings (user_id, media_id, stars, rated_at) "
            "SELECT ?, media_id, 5, 0 FROM files WHERE folder_id = ? AND media_id IS NOT NULL",
            [lib.bob, FOLDER],
        )
        db.execute(
            "INSERT OR REPLACE INTO watch_state (user_id, media_id, play_count, watched) "
            "SELECT ?, media_id, 9, 1 FROM files WHERE folder_id = ? AND media_id IS NOT NULL",
            [lib.bob, FOLDER],
        )
    try:
        for (sort, order), ids in before.items():
            assert ids == reference(lib, lib.alice, sort, order, {})
            query = browse.Query(sort=sort, order=order)
            assert walk(db, lib.alice, query, limit=60) == ids
        # Bob's own view: every file keyed alike, so the order is by id alone.
        ids = sorted(f["id"] for f in lib.files)
        assert walk(db, lib.bob, browse.Query(sort="rating", order="desc")) == ids[::-1]
        assert walk(db, lib.bob, browse.Query(sort="views", order="asc")) == ids
    finally:
        with dbmod.write(db):
            db.execute("DELETE FROM ratings WHERE user_id = ?", [lib.bob])
            db.execute("DELETE FROM watch_state WHERE user_id = ?", [lib.bob])
            db.conn.executemany(
                "INSERT INTO ratings (user_id, media_id, stars, rated_at) VALUES (?, ?, ?, 0)",
                [(lib.bob, m, s) for m, s in lib.stars[lib.bob].items()],
            )
            db.conn.executemany(
                "INSERT INTO watch_state (user_id, media_id, position, play_count, watched) "
                "VALUES (?, ?, 5, ?, ?)",
                [(lib.bob, m, n, m in lib.watched[lib.bob]) for m, n in lib.plays[lib.bob].items()],
            )


@pytest.mark.parametrize("filters", FILTERS, ids=_ids)
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["rating", "views"])
def test_no_arm_sorts_the_folder(lib: Lib, db, sort, order, filters):
    """The unkeyed arm walks files_folder in id order (or the user's own rows under a rating or
    favourite filter); the keyed arm starts from the user's rows, walked by key."""
    query = browse.Query(sort=sort, order=order, **filters)
    index = "ratings_by_user" if sort == "rating" else "watch_state_by_plays"
    # Planned without statistics (a fresh library) and with them (after ANALYZE).
    try:
        for analyzed in (False, True):
            if analyzed:
                db.execute("ANALYZE")
            params = {"folder": FOLDER, "user": lib.alice, "limit": 61, "k": 3, "after": 100}
            plan = [
                r[3]
                for r in db.execute(
                    "EXPLAIN QUERY PLAN " + browse.keyed_sql(query, params, after=True), params
                )
            ]
            inner = plan[: plan.index("SCAN k")]
            assert inner[1].startswith(f"SEARCH u USING COVERING INDEX {index} (user_id=? AND "), (
                plan
            )
            assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in inner, plan
            assert not any(
                s.startswith("SCAN") or s == "USE TEMP B-TREE FOR ORDER BY" for s in inner
            )
            sql = browse.unkeyed_sql(query, params, after=True)
            # At least N stars: every file is rated, so there is no unkeyed arm to query.
            assert (sql is None) == (sort == "rating" and "rating" in filters)
            if sql is None:
                continue
            plan = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
            if filters.get("rating") or filters.get("favorite"):
                mine = (
                    "ratings_by_user" if filters.get("rating") else "sqlite_autoindex_favorites_1"
                )
                assert plan[1].startswith(f"SEARCH d USING COVERING INDEX {mine} (user_id=?)"), plan
            else:
                op = "<" if order == "desc" else ">"
                assert plan[0] == (
                    f"SEARCH f USING INDEX files_folder (folder_id=? AND present=? AND rowid{op}?)"
                ), plan
                assert not any("TEMP B-TREE" in s for s in plan), plan
            assert not any(re.match(r"SCAN (f|m|u|d)\b", s) for s in plan), plan
    finally:
        db.execute("DELETE FROM sqlite_stat1")


def test_pages_through_the_app(lib: Lib):
    """The folder route pages a per-user sort by its cursor, for the signed-in user only."""
    from app import create_app
    from blueprints.access import COOKIE

    app = create_app({"media_dirs": [str(lib.root)], "data_dir": str(lib.data_dir)})
    client = app.test_client()
    client.set_cookie(COOKIE, session_token(lib.data_dir, lib.alice))
    expected = reference(lib, lib.alice, "views", "desc", {"kind": "video"})
    hash_of = {f["id"]: f"{f['media_id']:016x}" for f in lib.files}
    seen: list[str] = []
    url = "/browse/lib/big?sort=views&kind=video"
    while url:
        html = client.get(url, headers={"HX-Request": "true", "HX-Target": "more"} if seen else {})
        assert html.status_code == 200
        text = html.get_data(as_text=True)
        seen += re.findall(
            r'<li class="card (?:video|picture)[^"]*">\s*<a href="/watch/([0-9a-f]{16})"', text
        )
        more = re.search(r'id="more"[^>]* hx-get="([^"]+)"', text)
        url = more.group(1).replace("&amp;", "&") if more else ""
    assert seen == [hash_of[i] for i in expected]
    assert client.get("/browse/lib/big?sort=rating&after=999999").status_code == 400
