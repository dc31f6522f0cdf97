"""The Shows and Movies grids page by keyset in every sort and filter, on their indexes.

A synthesized library (the real schema, migrations applied; shows and movies rows as the
regrouping writes them) of 600 films and 300 shows with years, ratings, qualities and genres:
every page of every sort × filter is walked, 7 cards a page, against the order computed here
in Python, once with each year-filter strategy (a rare year driving the page, and the sort's
index walked with the year checked); and the plans are checked: the sort's covering index (a
genre's own) sought, no table scan, no sort, unless a rare year drives (then only its few
titles are sorted).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from services import db as dbmod
from services.errors import InvalidInput
from services.shows import grid

GENRES = ("Drama", "Comedy", "Crime", "Western", "Sci-Fi")
MOVIES, SHOWS = 600, 300


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory):
    data: Path = tmp_path_factory.mktemp("grid")
    db = dbmod.open_db(data)
    rng = random.Random(20)
    movies, shows = {}, {}
    with dbmod.write(db):
        for i in range(1, MOVIES + SHOWS + 1):
            db.execute(
                "INSERT INTO media (id, media_hash, kind, size, probe_status, added_at) "
                "VALUES (?, ?, 'video', 1, 'ok', 0)",
                [i, f"{i:016x}"],
            )
        for i in range(1, MOVIES + 1):
            title = f"{rng.choice(('The ', '', 'a '))}{rng.choice('ABCDEFGH')}{rng.random():.6f}"
            sort = title[4:] if title.startswith("The ") else title
            sort = sort[2:] if sort.startswith("a ") else sort
            # Years: most recent, a few old (a rare decade, the 1930s); some without a year.
            year = rng.choice((None, 1934, *range(1990, 2000), *range(1990, 2000), 2001))
            rating = rng.choice((None, 5.5, 7.0, 7.0, 8.3))
            quality = rng.choice((40, 55, 67))
            genres = {g for g in GENRES if rng.random() < {"Western": 0.03}.get(g, 0.4)}
            db.execute(
                "INSERT INTO movies (id, key, title, sort_title, year, rating, quality, versions, "
                "added_at, best_media_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [i, f"m{i}", title, sort, year, rating, quality, 1 if i % 13 else 0,
                 rng.choice((1.0, 2.0, 3.5)), i],
            )  # fmt: skip
            for g in genres:
                db.execute("INSERT INTO movie_genres (genre, movie_id) VALUES (?, ?)", [g, i])
            movies[i] = (title, sort, year, rating, quality, i % 13 != 0, genres)
        for i in range(1, SHOWS + 1):
            title = f"{rng.choice('ABCDEFGH')}{rng.random():.6f}"
            year = rng.choice((None, 1934, 1995, 1995, 2001, 2002))
            genres = {g for g in GENRES if rng.random() < {"Western": 0.03}.get(g, 0.4)}
            db.execute(
                "INSERT INTO shows (id, key, title, sort_title, year, episodes, seasons, added_at, "
                "frame_media_id) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?)",
                [i, f"s{i}", title, title, year, 0 if i % 17 == 0 else 3, MOVIES + i],
            )
            for g in genres:
                db.execute("INSERT INTO show_genres (genre, show_id) VALUES (?, ?)", [g, i])
            shows[i] = (title, year, i % 17 != 0, genres)
        # The title's sort keys on its genre rows, as the regrouping writes them (m0020d).
        for kind, cols in dbmod._GENRE_KEYS.items():
            db.execute(
                f"UPDATE {kind}_genres SET ({cols}) = (SELECT {cols} FROM {kind}s t "
                f"WHERE t.id = {kind}_genres.{kind}_id)"
            )
    yield db, movies, shows
    db.close()


def _years(filters: grid.Filters) -> tuple[int, int] | None:
    return filters.years


def _keeps(year, genres, filters: grid.Filters) -> bool:
    span = _years(filters)
    if span and not (year is not None and span[0] <= year <= span[1]):
        return False
    return not filters.genre or filters.genre.lower() in {g.lower() for g in genres}


def _movie_order(movies, sort: str, filters: grid.Filters) -> list[int]:
    keys = {
        "title": lambda i, m: (),
        "year": lambda i, m: (-(m[2] or 0),),
        "added": lambda i, m: (),  # filled below
        "rating": lambda i, m: (-(m[3] if m[3] is not None else -1),),
        "quality": lambda i, m: (-m[4],),
    }
    return [
        i
        for i, m in sorted(
            movies.items(), key=lambda kv: (*keys[sort](*kv), kv[1][1].lower(), kv[0])
        )
        if m[5] and _keeps(m[2], m[6], filters)
    ]


def _walk(fetch) -> list[int]:
    got, after, pages = [], None, 0
    while True:
        page = fetch(after)
        got += [c.id for c in page.items]
        pages += 1
        assert pages < 500
        if page.next_cursor is None:
            return got
        assert len(page.items) == 7
        after = page.next_cursor


FILTERS = [
    grid.Filters(),
    grid.Filters(genre="drama"),  # common, any case
    grid.Filters(genre="Western"),  # rare
    grid.Filters(genre="Opera"),  # none
    grid.Filters(year="1995"),
    grid.Filters(year="1990s"),
    grid.Filters(year="1930s"),  # rare
    grid.Filters(genre="Comedy", year="1990s"),
    grid.Filters(genre="Western", year="1995"),
]


@pytest.mark.parametrize("rare", [0, 1e9], ids=["walk-the-sort", "filter-drives"])
@pytest.mark.parametrize("sort", list(grid.MOVIE_SORTS))
def test_every_movie_page_in_every_sort_and_filter(lib, sort, rare, monkeypatch):
    db, movies, _ = lib
    monkeypatch.setattr(grid, "RARE", {"year": rare})
    added = dict(db.execute("SELECT id, added_at FROM movies").fetchall())
    for filters in FILTERS:
        want = _movie_order(movies, sort, filters)
        if sort == "added":
            want = sorted(want, key=lambda i: (-added[i], movies[i][1].lower(), i))
        got = _walk(
            lambda after, f=filters: grid.list_movies(
                db, sort=sort, after=after, user_id=1, limit=7, filters=f
            )
        )
        assert got == want, (sort, filters)


@pytest.mark.parametrize("rare", [0, 1e9], ids=["walk-the-sort", "filter-drives"])
def test_every_show_page_in_every_filter(lib, rare, monkeypatch):
    db, _, shows = lib
    monkeypatch.setattr(grid, "RARE", {"year": rare})
    for filters in FILTERS:
        want = [
            i
            for i, s in sorted(shows.items(), key=lambda kv: (kv[1][0].lower(), kv[0]))
            if s[2] and _keeps(s[1], s[3], filters)
        ]
        got = _walk(lambda after, f=filters: grid.list_shows(db, after=after, limit=7, filters=f))
        assert got == want, filters


def _plan(db, sql: str, args: dict) -> str:
    return "\n".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall())


@pytest.mark.parametrize("analyzed", [False, True])
def test_pages_seek_the_sorts_covering_index(lib, analyzed, monkeypatch):
    db, _, _ = lib
    if analyzed:
        db.execute("ANALYZE")
    monkeypatch.setattr(grid, "RARE", {"year": 0.01})  # every year filter common
    after = {"title": "x~5~M0.5", "year": "-1995~5~M0.5", "added": "-2.0~5~M",
             "rating": "-7.0~5~M", "quality": "-55~5~M"}  # fmt: skip
    for sort, cut in after.items():
        for filters in (grid.Filters(), grid.Filters(year="1990s")):
            plan = _plan(
                db,
                *grid.movies_query(db, sort=sort, after=cut.replace("x", ""), user_id=1,
                                   filters=filters),
            )  # fmt: skip
            index = "movies_by_year" if sort == "year" else f"movies_by_{sort}"
            assert f"SEARCH t USING COVERING INDEX {index}" in plan, (sort, filters, plan)
            assert "TEMP B-TREE" not in plan and "SCAN t" not in plan, (sort, filters, plan)
        # A genre (with a decade or not): its rows' index of this sort, sought from the cursor.
        for filters in (grid.Filters(genre="Western"), grid.Filters(genre="drama", year="1990s")):
            plan = _plan(
                db,
                *grid.movies_query(db, sort=sort, after=cut.replace("x", ""), user_id=1,
                                   filters=filters),
            )  # fmt: skip
            index = f"movie_genres_by_{sort}"
            assert f"SEARCH g USING COVERING INDEX {index} (genre=? AND " in plan, plan
            assert "SEARCH t USING INTEGER PRIMARY KEY" in plan, plan
            assert "TEMP B-TREE" not in plan and "SCAN" not in plan, (sort, filters, plan)
    # One year in title order: its range of the year index, already in title order.
    plan = _plan(db, *grid.movies_query(db, user_id=1, filters=grid.Filters(year="1995")))
    assert "COVERING INDEX movies_by_year (year_key=?)" in plan and "TEMP B-TREE" not in plan
    plan = _plan(db, *grid.shows_query(db, after="~5~M0.5", filters=grid.Filters(year="1995")))
    assert "COVERING INDEX shows_by_year (year=?" in plan and "TEMP B-TREE" not in plan
    plan = _plan(db, *grid.shows_query(db, after="~5~M0.5"))
    assert "SEARCH t USING COVERING INDEX shows_by_title" in plan and "TEMP B-TREE" not in plan
    plan = _plan(db, *grid.shows_query(db, after="~5~M0.5", filters=grid.Filters(genre="Drama")))
    assert "COVERING INDEX show_genres_by_title (genre=? AND " in plan and "TEMP" not in plan
    monkeypatch.setattr(grid, "RARE", {"year": 1000})
    # A rare decade drives in another sort: the year index's range (then its few rows), sorted.
    plan = _plan(db, *grid.movies_query(db, sort="rating", user_id=1,
                                        filters=grid.Filters(year="1930s")))  # fmt: skip
    assert "INDEX movies_by_year (year_key>? AND year_key<?)" in plan and "SCAN t" not in plan


def test_genres_are_listed_by_a_skip_scan(lib):
    db, _, _ = lib
    assert grid.genres(db, "movies") == sorted(GENRES)
    assert grid.genres(db, "shows") == sorted(GENRES)


@pytest.mark.parametrize("bad", ["x", "~x~y", "1e9999x~1~a"])
def test_a_bad_cursor_is_refused(lib, bad):
    db, _, _ = lib
    with pytest.raises(InvalidInput):
        grid.list_movies(db, sort="year", after=bad, user_id=1)
