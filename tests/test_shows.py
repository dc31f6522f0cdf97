"""Shows, seasons, movies and their .nfo files and artwork, on a library laid out as Sonarr,
Radarr and Kodi users lay theirs out (tests/show_library.py), scanned for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from services.library.sidecars import artwork_role
from services.shows import nfo
from services.shows.names import episode_end, season_of_folder, title_key
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
    assert kaiju == [(1, 12, 1), (1, 13, 1), (1, 13, 1)]  # EP13 in two versions
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
    assert heat[0][0] == "Heat (1995) - 720p HEVC.mp4" and heat[0][1] > heat[1][1]
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


# ---- pages ----

HX = {"HX-Request": "true"}


@pytest.fixture
def client(site):
    from tests.conftest import signed_in

    return signed_in(site.app)


def _hash(site, key: str) -> str:
    db = site.db()
    name = site.files[key].name
    row = db.execute(
        "SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id WHERE f.name = ?",
        [name],
    ).fetchone()
    db.close()
    return row[0]


def _show_id(site, title: str) -> int:
    db = site.db()
    sid = db.execute("SELECT id FROM shows WHERE title = ?", [title]).fetchone()[0]
    db.close()
    return sid


def test_shows_page_full_and_fragment(site, client):
    page = client.get("/shows")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    # sorted without the article: (The) Expanse, Flat Show, Kaiju
    assert html.index("The Expanse") < html.index("Flat Show") < html.index("Kaiju")
    assert 'class="thumb art"' in html  # The Expanse's poster.jpg, at its own size
    assert 'width="200" height="300"' in html
    part = client.get("/shows", headers={**HX, "HX-Target": "grid"})
    text = part.get_data(as_text=True)
    assert "<html" not in text and 'id="grid"' in text and "Kaiju" in text
    assert "HX-Request, HX-Target" in part.headers["Vary"]


def test_shows_page_pages_by_cursor(site, client):
    from services.shows import grid

    db = site.db()
    first = grid.list_shows(db, limit=2)
    rest = grid.list_shows(db, after=first.next_cursor, limit=2)
    db.close()
    assert [s.title for s in first.items] == ["The Expanse", "Flat Show"]
    assert [s.title for s in rest.items] == ["Kaiju"] and rest.next_cursor is None
    assert client.get("/shows?after=garbage").status_code == 400


def test_show_page_has_seasons_progress_and_next_episode(site, client):
    sid = _show_id(site, "The Expanse")
    html = client.get(f"/shows/{sid}").get_data(as_text=True)
    assert "Season 1" in html and "Season 3" in html and "Specials" in html
    assert html.index("Season 3") < html.index("Specials")  # specials last
    assert "Humanity has colonised the solar system" in html  # tvshow.nfo plot
    assert "Steven Strait" in html and "James Holden" in html
    assert "0 of 6 episodes watched" in html
    assert "S01E01 · Dulcinea" in html  # the next episode to watch: the first
    assert client.get("/shows/999999").status_code == 404


def test_season_page_lists_episodes_in_order_with_thumbs(site, client):
    sid = _show_id(site, "The Expanse")
    html = client.get(f"/shows/{sid}/season/1").get_data(as_text=True)
    labels = __import__("re").findall(r'class="ep-label">([^<]+)<', html)
    assert labels == ["S01E01", "S01E02", "S01E03-E04"]
    assert "Dulcinea" in html and "Miller searches for a missing girl" in html
    assert 'width="320" height="180"' in html  # the -thumb.jpg at its size, frames for the others
    assert client.get(f"/shows/{sid}/season/9").status_code == 404


def test_movies_page_sorts_and_fragment(site, client):
    html = client.get("/movies").get_data(as_text=True)
    assert html.index("Arrival") < html.index("Heat") < html.index("Hostile")
    by_year = client.get("/movies?sort=year").get_data(as_text=True)
    assert by_year.index("Arrival") < by_year.index("Hostile") < by_year.index("Heat")
    by_rating = client.get("/movies?sort=rating").get_data(as_text=True)
    assert by_rating.index("Heat") < by_rating.index("Arrival")  # 8.3 from the .nfo first
    assert "8.3/10" in by_rating and "2 versions" in by_rating
    part = client.get("/movies?sort=quality", headers={**HX, "HX-Target": "grid"})
    assert "<html" not in part.get_data(as_text=True) and part.headers["Vary"]
    assert client.get("/movies?sort=nope").status_code == 400


def test_a_users_rating_wins_over_the_files(site, client):
    from services.organize import ratings

    db = site.db()
    mid = db.execute(
        "SELECT id FROM media WHERE media_hash = ?", [_hash(site, "heat720")]
    ).fetchone()[0]
    uid = db.execute("SELECT id FROM users WHERE name = 'test-admin'").fetchone()[0]
    ratings.set_rating(db, uid, mid, 2) if hasattr(ratings, "set_rating") else db.execute(
        "INSERT OR REPLACE INTO ratings (user_id, media_id, stars, rated_at) VALUES (?, ?, 2, 0)",
        [uid, mid],
    )
    db.close()
    html = client.get("/movies").get_data(as_text=True)
    heat = html[html.index(">Heat<") :][:400]
    assert "★★" in heat and "8.3/10" not in heat


def test_movie_opens_its_best_playable_version(site, client):
    db = site.db()
    mid = db.execute("SELECT id FROM movies WHERE title = 'Heat'").fetchone()[0]
    db.close()
    # The 720p version is HEVC, which not every browser plays: without word from the browser,
    # the H.264 version opens.
    answer = client.get(f"/play/movie/{mid}")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/watch/" + _hash(site, "heat"))


def test_watch_page_shows_plot_cast_quality_and_versions(site, client):
    html = client.get("/watch/" + _hash(site, "heat")).get_data(as_text=True)
    assert "A group of professional bank robbers" in html
    assert "Crime" in html and "Al Pacino" in html and "Vincent Hanna" in html
    assert 'id="quality"' in html and "SDR" in html
    assert 'id="versions"' in html and "720p" in html


def test_up_next_follows_episode_order_not_file_names(site, client):
    html = client.get("/watch/" + _hash(site, "f101")).get_data(as_text=True)
    assert f'href="/watch/{_hash(site, "f102")}"' in html.split('id="next-link"')[1][:200] or (
        _hash(site, "f102") in html.split('id="next-link"')[0][-200:]
    )
    last = client.get("/watch/" + _hash(site, "e201")).get_data(as_text=True)
    nxt = last.split('rel="next" href="')[1].split('"')[0]
    assert nxt.endswith(_hash(site, "e301"))  # Season 2 → Season 3, in the other library


def test_continue_watching_offers_the_next_episode_after_a_finished_one(site, client):
    from services.organize import watchstate

    db = site.db()
    uid = db.execute("SELECT id FROM users WHERE name = 'test-admin'").fetchone()[0]
    h = _hash(site, "e102")
    watchstate.record(db, uid, h, position="119", duration="120", viewing="v1")
    row = db.execute(
        "SELECT watched FROM watch_state w JOIN media m ON m.id = w.media_id WHERE m.media_hash = ?",
        [h],
    ).fetchone()
    db.close()
    assert row[0] == 1
    html = client.get("/", headers={**HX, "HX-Target": "continue-watching"}).get_data(as_text=True)
    assert _hash(site, "e103") in html  # S01E03-E04 follows S01E02
    sid = _show_id(site, "The Expanse")
    show = client.get(f"/shows/{sid}").get_data(as_text=True)
    assert (
        "1 of 6 episodes watched" in show
        and "S01E03-E04" in show.split('id="next-episode"')[1][:300]
    )


def test_artwork_route_serves_the_cache_and_refuses_other_names(site, client):
    db = site.db()
    key = db.execute("SELECT key FROM artwork LIMIT 1").fetchone()[0]
    db.close()
    answer = client.get(f"/art/{key}.jpg")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert client.get("/art/..%2f..%2fsecret_key.jpg").status_code == 404
    assert client.get("/art/0123456789abcdef-400.jpg").status_code == 404


def test_every_video_of_the_library_is_probed(site):
    # Regression: the MP4 sample-table check (issue 20) left the file position past the start,
    # and FFmpeg then misread some MP4s ("no video stream", "not a video container").
    db = site.db()
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 0
    db.close()


def test_search_finds_plot_genres_and_people_from_nfo(site, client):
    from services.organize import search

    def found(q: str, key: str) -> bool:
        html = client.get("/search", query_string={"q": q}).get_data(as_text=True)
        return _hash(site, key) in html

    search.clear_expansions()
    assert found("pacino", "heat")  # an actor of the movie .nfo
    assert found("bank robbers", "heat")  # its plot
    assert found("thriller", "heat720")  # its genres, for every version
    assert found("holden", "e301")  # a role in tvshow.nfo: every episode, in either library
    assert found("miller searches", "e101")  # an episode's own .nfo
    assert not found("holden", "heat") and not found("zzyzx", "heat")


def test_cards_elsewhere_show_the_poster_at_its_own_size(site, client):
    # The folder page of Arrival: its card shows Arrival.2016-poster.jpg (300x450), not a frame.
    html = client.get("/browse/movies/Arrival (2016)").get_data(as_text=True)
    assert 'class="thumb art"' in html and 'width="300" height="450"' in html
    assert "/art/" in html
    home = client.get("/browse/movies/home").get_data(as_text=True)
    assert 'class="thumb art"' not in home  # no picture beside it: its frame grab


def test_filters_by_genre_and_year(site, client):
    crime = client.get("/movies?genre=crime").get_data(as_text=True)
    assert ">Heat<" in crime and ">Arrival<" not in crime
    assert '<option value="Crime" selected>' in crime
    nineties = client.get("/movies?year=1990s").get_data(as_text=True)
    assert ">Heat<" in nineties and ">Hostile<" not in nineties
    assert ">Arrival<" in client.get("/movies?year=2016&sort=year").get_data(as_text=True)
    drama = client.get("/shows?genre=Drama").get_data(as_text=True)
    assert "The Expanse" in drama and "Kaiju" not in drama
    assert client.get("/movies?year=19x5").status_code == 400
    empty = client.get("/movies?genre=Western").get_data(as_text=True)
    assert "Nothing here matches these filters." in empty
    for sort in ("title", "year", "added", "rating", "quality"):
        html = client.get(f"/movies?genre=Crime&year=1995&sort={sort}").get_data(as_text=True)
        assert ">Heat<" in html, sort
    # The regrouping writes the title's sort keys on its genre rows (m0020d).
    db = site.db()
    rows = db.execute(
        "SELECT g.genre, g.sort_title, g.year, g.year_key, g.quality_key, g.rating_key "
        "FROM movie_genres g JOIN movies t ON t.id = g.movie_id WHERE t.title = 'Heat' "
        "ORDER BY g.genre"
    ).fetchall()
    quality = db.execute("SELECT quality FROM movies WHERE title = 'Heat'").fetchone()[0]
    shows = db.execute("SELECT sort_title, year FROM show_genres WHERE genre = 'Drama'").fetchall()
    db.close()
    assert rows == [("Crime", "Heat", 1995, -1995, -quality, -8.3),
                    ("Thriller", "Heat", 1995, -1995, -quality, -8.3)]  # fmt: skip
    assert shows == [("Expanse", 2015)]


def test_folder_and_search_pages_filter_by_the_titles_genre_and_year(site, client):
    db = site.db()
    lib, rel = db.execute(
        "SELECT l.name, fo.rel_path FROM files f JOIN libraries l ON l.id = f.library_id "
        "JOIN folders fo ON fo.id = f.folder_id WHERE f.name = ?",
        [site.files["e101"].name],
    ).fetchone()
    db.close()
    season = f"/browse/{lib}/{rel}"
    e101, heat = _hash(site, "e101"), _hash(site, "heat")
    # A folder: the episodes' show is a 2015 Drama (tvshow.nfo); any case matches.
    page = client.get(season, query_string={"genre": "drama"}).get_data(as_text=True)
    assert e101 in page and "match the filters" in page
    assert '<option value="Drama" selected>' in page and '<option value="Crime">' in page
    assert e101 in client.get(season, query_string={"year": "2010s"}).get_data(as_text=True)
    none = client.get(season, query_string={"genre": "Crime", "projection": "flat"})
    html = none.get_data(as_text=True)
    assert none.status_code == 200 and e101 not in html and "Nothing here matches" in html
    # Clear filters drops every filter, the projection and the genre among them.
    assert f'href="{season}" data-clear-filters' in html.replace("%20", " ")
    assert e101 not in client.get(season, query_string={"year": "1995"}).get_data(as_text=True)

    # Search: the film's genre and year (movie .nfo), the show's for an episode.
    def found(**args: str) -> str:
        return client.get("/search", query_string=args).get_data(as_text=True)

    assert heat in found(q="heat", genre="Crime") and heat not in found(q="heat", genre="Drama")
    assert heat in found(q="heat", year="1990s") and heat not in found(q="heat", year="2016")
    assert e101 in found(q="expanse", genre="science fiction", year="2015")
    assert e101 not in found(q="expanse", genre="Crime")
    for url, args in ((season, {}), ("/search", {"q": "heat"})):
        bad = client.get(url, query_string={**args, "year": "19x5"})
        assert bad.status_code == 400 and "1990s" in bad.get_data(as_text=True)
    # A genre nobody's .nfo names still shows as chosen (and finds nothing), never a 500.
    odd = found(q="heat", genre="<b>Noir</b>")
    assert heat not in odd and "&lt;b&gt;Noir&lt;/b&gt;" in odd and "<b>Noir</b>" not in odd


# ---- the watcher ----


def test_the_watcher_reads_a_new_nfo_and_poster_beside_a_film(media, library_dir, tmp_path):
    from config import load_settings
    from services import db as dbmod
    from services.library.scanner import scan
    from services.library.watcher import Watcher
    from services.shows import ingest
    from tests.sample_library import _variant
    from tests.show_library import picture
    from tests.test_watcher import FAST, wait_for

    folder = library_dir / "Heat (1995)"
    folder.mkdir()
    _variant(media["h264_mp4"], folder / "Heat (1995).mp4", 5)
    settings = load_settings(
        {"media_dirs": [str(library_dir)], "data_dir": str(tmp_path / "data"), **FAST},
        environ={},
        dotenv_path=tmp_path / "no.env",
    )
    db = dbmod.open_db(settings.data_dir)
    ingest.after_scan(db, settings.data_dir, scan(db, settings))

    def on_dirty(folders):  # what the job runner does for the watcher: scan, then after_scan
        own = dbmod.connect(settings.db_path)
        try:
            ingest.after_scan(own, settings.data_dir, scan(own, settings, paths=folders))
        finally:
            own.close()

    watcher = Watcher(settings, on_dirty)
    watcher.start()
    try:
        assert watcher.wait_started()
        assert db.execute("SELECT nfo_id, poster_id FROM movies").fetchone() == (None, None)
        (folder / "Heat (1995).nfo").write_text(MOVIE_NFO)  # an .nfo alone is a change

        def rated() -> bool:
            return db.execute("SELECT rating FROM movies").fetchone() == (8.3,)

        wait_for(rated, 30, "the watcher to read the .nfo")
        picture(folder / "poster.jpg", (300, 450), (150, 80, 20))

        def postered() -> bool:
            return db.execute("SELECT poster_id FROM movies").fetchone()[0] is not None

        wait_for(postered, 30, "the watcher to read the poster")
        assert db.execute("SELECT count(*) FROM files WHERE name = 'poster.jpg'").fetchone()[0] == 0
    finally:
        watcher.stop()
        db.close()


def test_movie_default_version_follows_what_this_browser_plays(site, client):
    db = site.db()
    mid = db.execute("SELECT id FROM movies WHERE title = 'Heat'").fetchone()[0]
    db.close()
    # A browser that reports HEVC (Safari, Edge with the extension) gets the better version; one
    # that reports only H.264 the one it plays; one that plays neither the best one anyway.
    hevc = client.get(f"/play/movie/{mid}?caps=mse,mp4,hevc,h264_baseline,h264_main,h264_high,aac")
    assert hevc.headers["Location"].endswith(_hash(site, "heat720"))
    h264 = client.get(f"/play/movie/{mid}?caps=mse,mp4,h264_baseline,h264_main,h264_high,aac")
    assert h264.headers["Location"].endswith(_hash(site, "heat"))
    neither = client.get(f"/play/movie/{mid}?caps=mse,webm,vp9,opus")
    assert neither.headers["Location"].endswith(_hash(site, "heat720"))
    assert client.get(f"/play/movie/{mid}?caps=bogus").status_code == 400


H264_ONLY = "mse,mp4,h264_baseline,h264_main,h264_high,aac"
WITH_HEVC = H264_ONLY + ",hevc"


def test_an_episode_in_two_versions_opens_the_one_this_browser_plays(site, client):
    sid = _show_id(site, "Kaiju")
    html = client.get(f"/shows/{sid}/season/1").get_data(as_text=True)
    assert html.count('class="ep-label"') == 2  # EP12, EP13: two files of EP13, one episode
    # EP13's link asks which version to open; EP12, in one file, opens its watch page.
    ep13 = _hash(site, "a13hevc")  # the first of EP13's files by name
    assert f'href="/play/{ep13}"' in html
    assert f'href="/watch/{_hash(site, "a12")}"' in html
    h264 = client.get(f"/play/{ep13}?caps={H264_ONLY}")
    assert h264.headers["Location"].endswith("/watch/" + _hash(site, "a13"))
    hevc = client.get(f"/play/{ep13}?caps={WITH_HEVC}")
    assert hevc.headers["Location"].endswith("/watch/" + ep13)
    # The browser's word comes as a cookie (static/js/versions.js) when the link has no caps=.
    client.set_cookie("lvs_caps", WITH_HEVC, path="/play")
    try:
        by_cookie = client.get(f"/play/{_hash(site, 'a13')}")
        assert by_cookie.headers["Location"].endswith("/watch/" + ep13)
        client.set_cookie("lvs_caps", "bogus,names", path="/play")  # ignored, not a 400
        ignored = client.get(f"/play/{ep13}")
        assert ignored.headers["Location"].endswith("/watch/" + _hash(site, "a13"))
    finally:
        client.delete_cookie("lvs_caps", path="/play")
    # EP12's next episode is EP13: its link asks which version too; EP13's previous is EP12's file.
    html = client.get(f"/watch/{_hash(site, 'a12')}").get_data(as_text=True)
    assert f'id="next-link" rel="next" href="/play/{ep13}"' in html
    html = client.get(f"/watch/{_hash(site, 'a13')}").get_data(as_text=True)
    assert f'id="prev-link" rel="prev" href="/watch/{_hash(site, "a12")}"' in html
    # A file in one version opens itself; an unknown one is a 404.
    one = client.get(f"/play/{_hash(site, 'a12')}?caps={WITH_HEVC}")
    assert one.headers["Location"].endswith("/watch/" + _hash(site, "a12"))
    assert client.get("/play/0000000000000000").status_code == 404
    assert client.get(f"/play/{ep13}?caps=bogus").status_code == 400


def test_folder_and_search_pages_sort_by_quality(site, client):
    db = site.db()
    lib = db.execute(
        "SELECT l.name FROM libraries l JOIN files f ON f.library_id = l.id WHERE f.name = ?",
        ["Heat (1995).mp4"],
    ).fetchone()[0]
    quality = dict(db.execute(
        "SELECT f.name, f.sort_quality FROM files f JOIN file_meta fm ON fm.file_id = f.id "
        "WHERE fm.quality = f.sort_quality AND fm.quality > 0"
    ).fetchall())  # fmt: skip
    db.close()
    hevc, h264 = "Heat (1995) - 720p HEVC.mp4", "Heat (1995).mp4"
    assert quality[hevc] > quality[h264] > 0  # the regrouping's figure, kept on the file
    better, worse = f"/watch/{_hash(site, 'heat720')}", f"/watch/{_hash(site, 'heat')}"
    best = client.get(f"/browse/{lib}/Heat (1995)?sort=quality").get_data(as_text=True)
    assert best.index(better) < best.index(worse) and "Best quality first" in best
    worst = client.get(f"/browse/{lib}/Heat (1995)?sort=quality&order=asc").get_data(as_text=True)
    assert worst.index(worse) < worst.index(better)
    found = client.get("/search?q=heat&sort=quality").get_data(as_text=True)
    assert found.index(better) < found.index(worse)
    found = client.get("/search?q=heat&sort=quality&order=asc").get_data(as_text=True)
    assert found.index(worse) < found.index(better)


def test_description_for_the_vr_apis_is_the_plot(site):
    from services.shows import metadata

    db = site.db()
    ids = {r[0]: r[1] for r in db.execute("SELECT name, id FROM files")}
    assert metadata.description(db, ids["The.Expanse.S01E01.Dulcinea.mp4"]).startswith("Miller")
    assert metadata.description(db, ids["The.Expanse.S03E01.mp4"]).startswith("Humanity")
    assert metadata.description(db, ids["Heat (1995) - 720p HEVC.mp4"]).startswith("A group")
    assert metadata.description(db, ids["birthday.mp4"]) is None
    db.close()


def test_poster_card_titles_are_escaped(site):
    from services.shows.grid import MovieCard, ShowCard

    hostile = '<img src=x onerror=alert(1)> & "q"'
    with site.app.test_request_context("/"):
        template = site.app.jinja_env.from_string(
            '{% from "macros/poster_cards.html" import show_cards, movie_cards %}'
            "{{ show_cards(shows) }}{{ movie_cards(movies) }}"
        )
        html = template.render(
            shows=[ShowCard(1, hostile, None, 1, 1, None, "0123456789abcdef")],
            movies=[
                MovieCard(2, hostile, 1999, None, None, 50, 1, None, "0123456789abcdef", False)
            ],
        )
    assert "<img src=x" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") == 2
    assert 'href="/shows/1"' in html and 'href="/play/movie/2"' in html


def test_a_full_scan_reads_every_nfo_again(site):
    from services.shows import ingest

    db = site.db()
    db.execute("UPDATE nfo SET plot = 'stale' WHERE plot LIKE 'A group%'")
    ingest.after_scan(db, site.data, None)
    assert db.execute("SELECT count(*) FROM nfo WHERE plot = 'stale'").fetchone()[0] == 1
    ingest.after_scan(db, site.data, None, full=True)
    assert db.execute("SELECT count(*) FROM nfo WHERE plot = 'stale'").fetchone()[0] == 0
    db.close()


def test_cache_prune_removes_artwork_no_sidecar_uses(site):
    from services.operate import maintenance

    stray = site.data / "artwork" / "ff" / "ffffffffffffffff-400.jpg"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    db = site.db()
    kept = db.execute("SELECT key FROM artwork LIMIT 1").fetchone()[0]
    found = maintenance.orphaned_caches(db, site.data)
    db.close()
    assert stray in found
    assert not [p for p in found if p.stem == kept]
