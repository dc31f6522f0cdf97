"""Search (FTS5): the index follows scans and tags, prefix matching, ranking, broad matches in
rowid order, filters and sorts, highlighting, live-results fragments, hostile queries."""

from __future__ import annotations

import re

import pytest

from services.organize import search
from tests.organize_util import Users
from tests.sample_library import Site

HX = {"HX-Request": "true", "HX-Target": "results"}


def hashes(html: str) -> list[str]:
    return re.findall(r'<a href="/watch/([0-9a-f]{16})"', html)


def get(client, who: Users, q: str, **params):
    return client.get("/search", query_string={"q": q, **params}, headers=who.viewer)


def test_terms_are_quoted_prefixes():
    assert search.terms('Show "S01" OR title:x* NEAR(a b) -c ^d') == [
        "show",
        "s01",
        "or",
        "title",
        "x",
        "near",
        "a",
        "b",
    ]
    assert search.match_expression(["show", "s01"]) == '"show"* AND "s01"*'
    assert search.terms("a_b\x00c") == ["a", "b", "c"]
    assert search.terms("'\"*()") == []


def test_index_holds_scanned_files(site: Site):
    from services import db as dbmod

    db = dbmod.connect(site.settings.db_path)
    try:
        indexed = db.execute("SELECT count(*) FROM search_fts").fetchone()[0]
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        row = db.execute(
            "SELECT title, name, folder FROM search_fts WHERE search_fts MATCH '\"s01e02\"'"
        ).fetchone()
    finally:
        db.close()
    assert indexed == files > 80
    assert row == ("Show", "Show.S01E02.mp4", "Movies")


def test_prefix_and_word_order(client, who, site):
    html = get(client, who, "sho s01e0").get_data(as_text=True)
    found = hashes(html)
    assert {site.hash("ep1"), site.hash("ep2"), site.hash("ep3")} <= set(found)
    assert site.hash("h264") not in found
    assert "<mark>Show</mark>" in html  # the title's matching word is marked


def test_folder_names_match(client, who, site):
    found = hashes(get(client, who, "extras").get_data(as_text=True))
    assert found == [site.hash("bonus")]


def test_ranking_puts_title_match_first(client, who, site):
    # "show" is in the episodes' titles and names; nothing else has it.
    found = hashes(get(client, who, "show").get_data(as_text=True))
    assert found[:3] and set(found[:3]) == {site.hash(f"ep{n}") for n in (1, 2, 3)}


def test_fragment_for_live_results(client, who):
    r = client.get("/search", query_string={"q": "show"}, headers={**who.viewer, **HX})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in html
    assert re.match(r'\s*<section id="results"', html)
    assert "HX-Request, HX-Target" in r.headers["Vary"]


def test_full_page_has_live_input(client, who):
    html = get(client, who, "show").get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert 'hx-trigger="input changed delay:250ms from:#q' in html


def test_filters_and_sorts_combine(client, who, site):
    pics = hashes(get(client, who, "p0", kind="picture").get_data(as_text=True))
    assert pics and site.hash("h264") not in pics
    assert hashes(get(client, who, "p0", kind="video").get_data(as_text=True)) == []
    by_size = get(client, who, "movies", sort="size", order="desc").get_data(as_text=True)
    assert site.hash("long") in hashes(by_size)
    assert get(client, who, "x", sort="DROP TABLE").status_code == 400
    assert get(client, who, "x", sort="relevance", rating="9").status_code == 400


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '""""',
        "show\"'",
        "NEAR(",
        "a OR",
        "AND AND",
        "*",
        "^show",
        "title:show",
        "{title name}: show",
        "show -",
        "(((",
        "\x00show",
        "x" * 5000,
        "é" * 300,
        "'; DROP TABLE media; --",
        "%_%",
        "\\",
        "🙂",
    ],
)
def test_hostile_queries_never_500(client, who, q):
    r = get(client, who, q)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    r = client.get("/search", query_string={"q": q}, headers={**who.viewer, **HX})
    assert r.status_code == 200


def test_hostile_query_is_escaped_in_page(client, who):
    html = get(client, who, "<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html


def test_tags_are_searchable_and_follow_renames(client, who, site):
    h = site.hash("vp9")
    r = client.post(f"/watch/{h}/tags", data={"tag": "Zebrafish"}, headers=who.admin)
    assert r.status_code == 200
    assert hashes(get(client, who, "zebra").get_data(as_text=True)) == [h]
    assert hashes(get(client, who, "okap").get_data(as_text=True)) == []  # expansion kept...
    r = client.post(
        "/admin/tags/rename", data={"tag": "zebrafish", "new": "Okapi"}, headers=who.admin
    )
    assert r.status_code == 303
    assert hashes(get(client, who, "zebra").get_data(as_text=True)) == []
    assert hashes(get(client, who, "okap").get_data(as_text=True)) == [h]  # ...until a change


def test_broad_match_is_not_ranked(site, monkeypatch):
    from services import db as dbmod
    from services.browse import browse

    db = dbmod.connect(site.settings.db_path)
    try:
        monkeypatch.setattr(search, "RANK_LIMIT", 5)
        res = search.search(db, "p0", browse.Query(), user_id=1, limit=10)
        assert not res.ranked and res.broad
        ids = [c.file_id for c in res.cards]
        assert ids == sorted(ids, reverse=True) and len(ids) == 10
        more = search.search(db, "p0", browse.Query(), user_id=1, after=res.after, limit=10)
        assert more.cards and max(c.file_id for c in more.cards) < min(ids)
        monkeypatch.setattr(search, "RANK_LIMIT", 1000)
        ranked = search.search(db, "p0", browse.Query(), user_id=1, limit=10)
        assert ranked.ranked and ranked.after == 10
    finally:
        db.close()


def test_highlight_marks_word_prefixes():
    assert search.highlight("The Show Shop", ["sho"]) == [
        ("The ", False),
        ("Show", True),
        (" ", False),
        ("Shop", True),
    ]


def test_missing_files_leave_the_index_and_come_back(site):
    from services import db as dbmod
    from services.browse import browse

    db = dbmod.connect(site.settings.db_path)
    try:
        found = search.search(db, "extras", browse.Query(), user_id=1)
        assert [c.media_hash for c in found.cards] == [site.hash("bonus")]
        file_id = found.cards[0].file_id
        with dbmod.write(db):
            db.execute("UPDATE files SET present = 0 WHERE id = ?", [file_id])
        assert search.search(db, "extras", browse.Query(), user_id=1).cards == []
        with dbmod.write(db):
            db.execute("UPDATE files SET present = 1 WHERE id = ?", [file_id])
        assert search.search(db, "bonus", browse.Query(), user_id=1).cards[0].file_id == file_id
    finally:
        db.close()


def test_long_prefixes_expand_to_the_words_they_begin(site):
    from services import db as dbmod

    db = dbmod.connect(site.settings.db_path)
    try:
        assert search.query_expression(db, ["sho"]) == '"sho"*'  # the prefix index serves it
        assert search.query_expression(db, ["extr"]) == '"extras"'
        assert search.query_expression(db, ["zzzzq"]) == '"zzzzq"'
        assert search.query_expression(db, ["s01e0"]) == '("s01e01" OR "s01e02" OR "s01e03")'
        assert search.query_expression(db, ["café"]) == '"café"*'  # the tokenizer folds it
    finally:
        db.close()


def test_index_is_merged_after_a_big_scan(site, monkeypatch):
    from services import db as dbmod
    from services.browse import browse
    from services.library.scanner import ScanReport

    db = dbmod.connect(site.settings.db_path)
    try:
        small = ScanReport(new=3)
        assert search.optimize_after_scan(db, small) is False
        monkeypatch.setattr(search, "OPTIMIZE_AFTER", 3)
        assert search.optimize_after_scan(db, small) is True
        assert search.search(db, "show", browse.Query(), user_id=1).cards
    finally:
        db.close()
