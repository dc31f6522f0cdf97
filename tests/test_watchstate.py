"""Watch state: the resume rules, play counts per viewing, continue watching, and the progress
route the player posts to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.organize import watchstate
from tests.conftest import signed_in
from tests.sample_library import LONG_SECONDS, Site

USER = watchstate.DEFAULT_USER


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Site:
    return Site(tmp_path_factory.mktemp("watch"), media)


@pytest.fixture
def db(site: Site):
    database = dbmod.connect(site.settings.db_path)
    with dbmod.write(database):
        database.execute("DELETE FROM watch_state")
    yield database
    database.close()


def media_id(db, media_hash: str) -> int:
    return db.execute("SELECT id FROM media WHERE media_hash = ?", [media_hash]).fetchone()[0]


@pytest.mark.parametrize(
    ("position", "duration", "kept", "watched"),
    [
        (10, 600, 0, False),  # 1.7 %: only looked
        (29.9, 600, 0, False),  # just under 5 %
        (31, 600, 31, False),
        (300, 600, 300, False),
        (540, 600, 540, False),  # exactly 90 %: still resumable
        (541, 600, 0, True),  # over 90 %: watched, starts over next time
        (100, 200, 0, False),  # under 5 minutes: never resumes
        (190, 200, 0, True),  # ... but can be watched
        (150, 300, 150, False),  # exactly 5 minutes resumes
    ],
)
def test_resume_rules(position, duration, kept, watched):
    assert watchstate.apply_rules(position, duration) == (kept, watched)


def test_record_keeps_position_and_counts_one_play_per_viewing(site, db):
    h = site.hash("long")
    for second in (20, 60, 100):
        state = watchstate.record(
            db, USER, h, position=second, duration=LONG_SECONDS, viewing="a1", now=1000 + second
        )
    assert (state.position, state.play_count, state.watched) == (100, 1, False)
    assert state.last_played == 1100
    state = watchstate.record(db, USER, h, position=200, duration=LONG_SECONDS, viewing="b2")
    assert (state.position, state.play_count) == (200, 2)
    state = watchstate.record(db, USER, h, position=350, duration=LONG_SECONDS, viewing="b2")
    assert (state.position, state.watched, state.play_count) == (0, True, 2)
    # Watching again later keeps "watched" and resumes from the new spot.
    state = watchstate.record(db, USER, h, position=120, duration=LONG_SECONDS, viewing="c3")
    assert (state.position, state.watched, state.play_count) == (120, True, 3)


def test_the_probed_duration_wins_over_the_players(site, db):
    # The player claims the 6-minute video is 100 s long: 95 s would then be "watched".
    state = watchstate.record(db, USER, site.hash("long"), position=95, duration=100, viewing="x")
    assert (state.position, state.watched, state.duration) == (95, False, LONG_SECONDS)


def test_position_past_the_end_counts_as_the_end(site, db):
    state = watchstate.record(
        db, USER, site.hash("long"), position=10_000, duration=LONG_SECONDS, viewing="x"
    )
    assert state.watched and state.position == 0


@pytest.mark.parametrize(
    ("position", "duration", "viewing"),
    [
        ("abc", 360, "v"),
        (-1, 360, "v"),
        ("nan", 360, "v"),
        ("inf", 360, "v"),
        (None, 360, "v"),
        (10, 360, ""),
        (10, 360, "bad id!"),
        (10, 360, "x" * 65),
    ],
)
def test_bad_reports_are_refused(site, db, position, duration, viewing):
    with pytest.raises(InvalidInput):
        watchstate.record(
            db, USER, site.hash("long"), position=position, duration=duration, viewing=viewing
        )
    assert watchstate.get(db, USER, media_id(db, site.hash("long"))) is watchstate.NEVER


def test_pictures_have_no_watch_state(site, db):
    with pytest.raises(InvalidInput):
        watchstate.record(db, USER, site.hash("photo"), position=1, duration=1, viewing="v")


def test_unknown_media(db):
    with pytest.raises(NotFound):
        watchstate.record(db, USER, "0" * 16, position=1, duration=1, viewing="v")


def test_continue_watching_most_recent_first(site, db):
    long_h, ep1 = site.hash("long"), site.hash("ep1")
    watchstate.record(db, USER, long_h, position=100, duration=LONG_SECONDS, viewing="a", now=10)
    # ep1 is 2 s long: under 5 minutes, so it never shows up in continue watching.
    watchstate.record(db, USER, ep1, position=1, duration=2, viewing="a", now=20)
    assert [c.media_hash for c in watchstate.continue_watching(db, user_id=USER)] == [long_h]
    cards = watchstate.continue_watching(db, user_id=USER)
    assert cards[0].position == 100 and round(cards[0].progress, 3) == round(100 / 360, 3)
    watchstate.record(db, USER, long_h, position=359, duration=LONG_SECONDS, viewing="a", now=30)
    assert watchstate.continue_watching(db, user_id=USER) == []


def test_state_is_per_user(site, db):
    h = site.hash("long")
    with dbmod.write(db):
        db.execute("INSERT INTO users (id, name, created_at) VALUES (2, 'second', 0)")
    try:
        watchstate.record(db, 2, h, position=100, duration=LONG_SECONDS, viewing="a")
        assert watchstate.get(db, USER, media_id(db, h)) is watchstate.NEVER
        assert watchstate.continue_watching(db, user_id=USER) == []
        assert len(watchstate.continue_watching(db, user_id=2)) == 1
    finally:
        with dbmod.write(db):
            db.execute("DELETE FROM users WHERE id = 2")


# -- through HTTP ----------------------------------------------------------------------------


def test_progress_route_then_resume_and_continue_watching(site, db):
    client = signed_in(site.app)
    h = site.hash("long")
    response = client.post(
        f"/watch/{h}/progress", data={"position": "123.5", "duration": "360", "viewing": "abc"}
    )
    assert response.status_code == 204
    page = client.get(f"/watch/{h}").get_data(as_text=True)
    assert 'data-resume="123.50"' in page
    assert re.search(r"<dt>Plays</dt><dd>1</dd>", page)
    home = client.get("/").get_data(as_text=True)
    shelf = home.split('id="continue-watching"')[1].split("</section>")[0]
    assert f"/watch/{h}" in shelf and 'aria-label="Watched 34%"' in shelf
    folder = client.get(f"/browse/{site.lib}/Movies").get_data(as_text=True)
    assert '<progress max="1" value="0.343"' in folder


@pytest.mark.parametrize(
    "form",
    [
        {"position": "x", "duration": "360", "viewing": "abc"},
        {"position": "10", "duration": "360"},
        {},
    ],
)
def test_progress_route_bad_input_is_400(site, db, form):
    response = signed_in(site.app).post(f"/watch/{site.hash('long')}/progress", data=form)
    assert response.status_code == 400


def test_progress_route_unknown_media_is_404(site, db):
    response = signed_in(site.app).post(
        f"/watch/{'f' * 16}/progress", data={"position": "1", "duration": "360", "viewing": "a"}
    )
    assert response.status_code == 404


def test_progress_route_refuses_cross_site_posts(site, db):
    client = signed_in(site.app)
    url = f"/watch/{site.hash('long')}/progress"
    form = {"position": "100", "duration": "360", "viewing": "abc"}
    evil = client.post(url, data=form, headers={"Origin": "http://evil.example.com"})
    assert evil.status_code == 403
    assert watchstate.get(db, USER, media_id(db, site.hash("long"))) is watchstate.NEVER
    same = client.post(url, data=form, headers={"Origin": "http://localhost"})
    assert same.status_code == 204


def test_progress_route_is_post_only(site):
    response = signed_in(site.app).get(f"/watch/{site.hash('long')}/progress")
    assert response.status_code == 405
