"""Inputs peers have shipped 500s on: numbers too big for SQLite, digits that are not ASCII."""

from __future__ import annotations

import pytest

from tests.organize_util import make_users
from tests.sample_library import Site

HUGE = "9" * 25


@pytest.fixture(scope="module")
def auth(site: Site) -> dict[str, str]:
    return make_users(site).admin


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/playlists/{HUGE}"),
        ("POST", f"/playlists/{HUGE}/delete"),
        ("POST", f"/playlists/1/items/{HUGE}/remove"),
        ("POST", f"/account/tokens/{HUGE}/delete"),
        ("POST", f"/admin/users/{HUGE}/disable"),
    ],
)
def test_ids_too_big_for_sqlite_are_not_found(site, auth, method, path):
    r = site.app.test_client().open(path, method=method, headers=auth)
    assert r.status_code == 404


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1\u00b2"])
def test_non_ascii_digits_are_refused_not_crashed(site, auth, value):
    client = site.app.test_client()
    h = site.hash("ep1")
    assert client.get(f"/browse/{site.lib}/Movies", headers=auth).status_code == 200
    folder = client.get(f"/browse/{site.lib}/Movies?after={value}", headers=auth)
    assert folder.status_code == 400
    assert client.get(f"/search?q=a&after={value}", headers=auth).status_code in (200, 400)
    assert client.get(f"/watch/{h}?playlist={value}", headers=auth).status_code == 200
    rating = client.post(f"/watch/{h}/rating", data={"stars": value}, headers=auth)
    assert rating.status_code == 400


@pytest.mark.parametrize("value", ["\u00b2", "\u0663"])
def test_non_ascii_digits_in_playback_urls_are_refused_not_crashed(site, auth, value):
    client = site.app.test_client()
    h = site.hash("ep1")
    master = client.get(f"/media/{h}/hls/master.m3u8?audio={value}", headers=auth)
    assert master.status_code in (400, 404, 422), master.status_code
    segment = client.get(f"/media/{h}/hls/0123456789abcdef/{value}.ts", headers=auth)
    assert segment.status_code == 404
