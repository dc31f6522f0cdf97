"""Shows, seasons, movies and their .nfo files and artwork, on a library laid out as Sonarr,
Radarr and Kodi users lay theirs out (tests/show_library.py), scanned for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from services.library.sidecars import artwork_role
from services.shows import nfo
from services.shows.grouping import episode_end, season_of_folder, title_key
from tests.show_library import BILLION_LAUGHS, EXTERNAL_ENTITY, MOVIE_NFO, ShowSite


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> ShowSite:
    return ShowSite(tmp_path_factory.mktemp("shows"), media)


# ---- names ----


def test_artwork_names_by_kodi_and_jellyfin_conventions():
    stems = frozenset({b"Heat (1995)"})
    assert artwork_role(b"poster.jpg", stems) == "poster"
    assert artwork_role(b"folder.JPG", stems) == "poster"
    assert artwork_role(b"fanart.png", stems) == "fanart"
    assert artwork_role(b"backdrop.jpg", stems) == "fanart"
    assert artwork_role(b"clearlogo.png", stems) == "clearlogo"
    assert artwork_role(b"season01-poster.jpg", stems) == "season:1:poster"
    assert artwork_role(b"season-specials-poster.jpg", stems) == "season:0:poster"
    assert artwork_role(b"Heat (1995)-poster.jpg", stems) == "video:poster"
    assert artwork_role(b"Heat (1995)-thumb.jpg", stems) == "video:thumb"
    # A photo that merely ends so, with no video of that name beside it, stays a photo.
    assert artwork_role(b"beach-thumb.jpg", stems) is None
    assert artwork_role(b"holiday.jpg", stems) is None
    assert artwork_role(b"poster.mp4", stems) is None


def test_episode_names_and_season_folders():
    assert episode_end("Show.S01E03-E04.mkv", 3) == 4
    assert episode_end("Show.S01E03E04E05.mkv", 3) == 5
    assert episode_end("Show 1x03-1x04.mkv", 3) == 4
    assert episode_end("Show.S01E03.1080p-GROUP.mkv", 3) is None
    assert episode_end("Show.S01E03-1080p.mkv", 3) is None
    assert season_of_folder("Season 02") == 2
    assert season_of_folder("S03") == 3
    assert season_of_folder("Specials") == 0
    assert season_of_folder("Season 0") == 0
    assert season_of_folder("Extras in 2019") is None
    assert title_key("Marvel's Agents of S.H.I.E.L.D.") == title_key("Marvels Agents of SHIELD")


# ---- .nfo ----


def test_movie_nfo_fields():
    got = nfo.parse(MOVIE_NFO.encode())
    assert got.kind == "movie" and got.title == "Heat" and got.year == 1995
    assert got.genres == ("Crime", "Thriller") and got.studios == ("Warner Bros.",)
    assert got.rating == 8.3 and got.runtime == 170 and got.premiered == "1995-12-15"
    assert got.uniqueids == {"imdb": "tt0113277", "tmdb": "949"}
    actors = [(p.name, p.role) for p in got.people if p.kind == "actor"]
    assert actors == [("Al Pacino", "Vincent Hanna"), ("Robert De Niro", "Neil McCauley")]
    assert ("Michael Mann", None, "director") in [(p.name, p.role, p.kind) for p in got.people]
    assert got.plot.startswith("A group of professional bank robbers")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BILLION_LAUGHS.encode(), "DTD"),
        (EXTERNAL_ENTITY.encode(), "DTD"),
        (b"<movie><title>unclosed</movie>", "malformed"),
        (b"https://www.imdb.com/title/tt0113277/", "not XML"),
        (b"<html><title>x</title></html>", "unknown root"),
    ],
)
def test_hostile_and_broken_nfo_are_refused_with_a_reason(data, reason):
    started = time.perf_counter()
    with pytest.raises(nfo.NfoError, match=reason):
        nfo.parse(data)
    assert time.perf_counter() - started < 0.5  # refused at the declaration, never expanded


def test_a_50_mb_nfo_is_refused_from_its_size_without_reading_it(tmp_path):
    big = tmp_path / "big.nfo"
    with open(big, "wb") as f:
        f.write(b"<movie><plot>")
        f.truncate(50 << 20)
    with pytest.raises(nfo.NfoError, match="too large"):
        nfo.read(str(big))


# ---- the scanned library ----


def test_shows_group_across_folders_and_libraries(site):
    db = site.db()
    shows = db.execute(
        "SELECT title, year, episodes, seasons FROM shows ORDER BY sort_title"
    ).fetchall()
    assert shows == [
        ("The Expanse", 2015, 6, 3),
        ("Flat Show", None, 2, 1),
        ("Kaiju", None, 2, 1),
    ] or (
        sorted(shows)
        == sorted([("The Expanse", 2015, 6, 3), ("Flat Show", None, 2, 1), ("Kaiju", None, 2, 1)])
    )
    rows = db.execute(
        "SELECT f.name, m.season, m.episode, m.episode_end, m.absolute FROM file_meta m "
        "JOIN files f ON f.id = m.file_id JOIN shows s ON s.id = m.show_id "
        "WHERE s.title = 'The Expanse' ORDER BY m.season, m.episode"
    ).fetchall()
    assert rows == [
        ("The.Expanse.S00E01.mp4", 0, 1, None, 0),
        ("The.Expanse.S01E01.Dulcinea.mp4", 1, 1, None, 0),
        ("The.Expanse.S01E02.mp4", 1, 2, None, 0),
        ("The.Expanse.S01E03-E04.mp4", 1, 3, 4, 0),
        ("S02E01.mp4", 2, 1, None, 0),
        ("The.Expanse.S03E01.mp4", 3, 1, None, 0),  # from the second library
    ]
    kaiju = db.execute(
        "SELECT m.season, m.episode, m.absolute FROM file_meta m JOIN shows s ON s.id = m.show_id "
        "WHERE s.title = 'Kaiju' ORDER BY m.episode"
    ).fetchall()
    assert kaiju == [(1, 12, 1), (1, 13, 1)]
    expanse = db.execute(
        "SELECT nfo_id, poster_id, fanart_id FROM shows WHERE title = 'The Expanse'"
    ).fetchone()
    assert all(expanse)
    season1 = db.execute(
        "SELECT se.poster_id, se.episodes FROM seasons se JOIN shows s ON s.id = se.show_id "
        "WHERE s.title = 'The Expanse' AND se.season = 1"
    ).fetchone()
    assert season1[0] is not None and season1[1] == 3
    db.close()


def test_movies_with_versions_nfo_and_posters(site):
    db = site.db()
    movies = dict(
        (r[0], r[1:])
        for r in db.execute(
            "SELECT title, year, versions, rating, poster_id IS NOT NULL FROM movies"
        )
    )
    assert movies["Heat"] == (1995, 2, 8.3, 1)
    assert movies["Arrival"] == (2016, 1, None, 1)
    assert movies["Hostile"][:2] == (2001, 1)
    assert "birthday" not in movies and "home" not in movies
    heat = db.execute(
        "SELECT f.name, m.quality FROM file_meta m JOIN files f ON f.id = m.file_id "
        "JOIN movies mv ON mv.id = m.movie_id WHERE mv.title = 'Heat' ORDER BY m.quality DESC"
    ).fetchall()
    assert heat[0][0] == "Heat (1995) - 720p.mp4" and heat[0][1] > heat[1][1]
    db.close()


def test_artwork_is_cached_scaled_and_never_indexed_as_pictures(site):
    db = site.db()
    names = {r[0] for r in db.execute("SELECT name FROM files")}
    assert "poster.jpg" not in names and "fanart.jpg" not in names
    assert "Arrival.2016-poster.jpg" not in names
    keys = db.execute(
        "SELECT s.name, a.key, a.width, a.height FROM artwork a JOIN sidecars s ON s.id = a.sidecar_id"
    ).fetchall()
    made = {name: (key, w, h) for name, key, w, h in keys}
    assert made["fanart.jpg"][1:] == (640, 360)
    key = made["Arrival.2016-poster.jpg"][0]
    assert (site.data / "artwork" / key[:2] / f"{key}.jpg").stat().st_size > 0
    db.close()


def test_hostile_nfo_and_fake_picture_are_recorded_as_failed(site):
    db = site.db()
    failed = dict(
        db.execute("SELECT name, reason FROM sidecars WHERE status = 'failed'").fetchall()
    )
    assert "DTD" in failed["Hostile (2001).nfo"]
    assert failed["poster.jpg"] == "not a picture"
    reasons = [r for _, r in site.report.failures]
    assert any("DTD" in r for r in reasons) and "not a picture" in reasons
    db.close()


def test_an_edited_nfo_is_read_again_by_the_next_scan(site, caplog):
    from tests.show_library import scan_all

    path = site.roots[2] / "Arrival (2016)" / "movie.nfo"
    path.write_text(
        MOVIE_NFO.replace("Heat", "Arrival").replace("1995", "2016").replace("8.3", "7.9")
    )
    try:
        scan_all(site.settings)
        db = site.db()
        row = db.execute("SELECT rating, nfo_id FROM movies WHERE title = 'Arrival'").fetchone()
        assert row[0] == 7.9 and row[1] is not None
        genres = db.execute(
            "SELECT n.genres FROM nfo n JOIN sidecars s ON s.id = n.sidecar_id WHERE s.name = 'movie.nfo'"
        ).fetchone()[0]
        assert json.loads(genres) == ["Crime", "Thriller"]
        db.close()
    finally:
        path.unlink()
        scan_all(site.settings)
    db = site.db()
    assert db.execute("SELECT nfo_id FROM movies WHERE title = 'Arrival'").fetchone()[0] is None
    db.close()
