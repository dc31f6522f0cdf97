"""Live search suggestions and "did you mean" (issue 16), on the real scanned sample library."""

from __future__ import annotations

import re

from services import db as dbmod
from services.organize import suggest


def test_distance_counts_edits_and_swaps_and_stops_early() -> None:
    assert suggest.distance("arival", "arrival") == 1
    assert suggest.distance("arrvial", "arrival") == 1  # a swap is one edit
    assert suggest.distance("holyday", "holiday") == 1
    assert suggest.distance("kitten", "sitting") == 3  # over the limit of 2: 3 = limit + 1
    assert suggest.distance("same", "same") == 0


def test_nearest_word_and_did_you_mean(site) -> None:
    db = dbmod.open_db(site.data)
    try:
        assert suggest.nearest_word(db, "bonsu") == "bonus"
        assert suggest.did_you_mean(db, "lomg") == "long"
        assert suggest.did_you_mean(db, "long") is None  # known words need no correction
        assert suggest.did_you_mean(db, "zzqqxx") is None  # nothing near: no suggestion
        assert suggest.did_you_mean(db, "") is None
    finally:
        db.close()


def test_suggestions_offer_items_tags_and_folders(site, who) -> None:
    client = site.app.test_client()
    h = site.hash("long")
    client.post(f"/watch/{h}/tags", data={"tag": "Longform"}, headers=who.admin)
    r = client.get("/search/suggest?q=lon", headers={**who.viewer, "HX-Request": "true"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in html and "HX-Request" in r.headers["Vary"]
    assert html.lstrip().startswith('<div id="suggest"')
    assert f'href="/watch/{h}"' in html
    assert 'href="/tag/Longform"' in html
    r = client.get("/search/suggest?q=mov", headers=who.viewer)
    assert re.search(r'href="/browse/library/Movies"', r.get_data(as_text=True))
    r = client.get("/search/suggest?q=lomg", headers=who.viewer)
    assert "Did you mean <strong>long</strong>?" in r.get_data(as_text=True)
    empty = client.get("/search/suggest?q=", headers=who.viewer).get_data(as_text=True)
    assert "<li" not in empty
    assert client.get("/search/suggest?q=x", headers={}).status_code in (302, 401)


def test_the_results_page_says_did_you_mean(site, who) -> None:
    client = site.app.test_client()
    html = client.get("/search?q=bonsu", headers=who.viewer).get_data(as_text=True)
    assert "Did you mean" in html and 'href="/search?q=bonus"' in html
    html = client.get("/search?q=bonus", headers=who.viewer).get_data(as_text=True)
    assert "Did you mean" not in html


def test_setup_page_shows_no_library_links(tmp_path) -> None:
    from app import create_app

    (tmp_path / "lib").mkdir()
    app = create_app({"media_dirs": [str(tmp_path / "lib")], "data_dir": str(tmp_path / "d")})
    html = app.test_client().get("/setup").get_data(as_text=True)
    assert "Create the admin account" in html
    for absent in ('role="search"', ">Tags<", ">Playlists<", ">History<", ">Sign in<"):
        assert absent not in html, absent


def test_a_folder_without_media_gets_a_folder_picture(site) -> None:
    from services.library.folders import Folder

    with site.app.test_request_context("/"):
        from flask import render_template_string

        html = render_template_string(
            '{% from "macros/cards.html" import folder_cards %}{{ folder_cards(fs) }}',
            fs=[Folder(1, 1, "Shows", "Shows", None, 0, "library/Shows", None, 2)],
        )
    assert 'class="folder-art"' in html and "<img" not in html and "2 folders" in html
