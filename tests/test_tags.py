"""Tags: inline add/remove, suggestions, bulk on a selection, clipboard source, tag pages,
admin rename/merge (admins only), browse filters by tag, favourite, rating and unwatched,
related-by-tags, and the metadata cache across connections (other processes)."""

from __future__ import annotations

import re

import pytest

from services import db as dbmod
from services.organize import metacache, tags


def hashes(html: str) -> list[str]:
    return re.findall(r'<a href="/watch/([0-9a-f]{16})"', html)


def test_add_and_remove_inline(client, who, site):
    h = site.hash("h264")
    hx = {**who.admin, "HX-Request": "true", "HX-Target": "tags"}
    r = client.post(f"/watch/{h}/tags", data={"tag": " Road  trip , beach,road trip"}, headers=hx)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and re.match(r'\s*<section id="tags"', html)
    assert re.findall(r'<a href="/tag/[^"]+">([^<]+)</a>', html) == ["beach", "Road trip"]
    r = client.post(f"/watch/{h}/tags/remove", data={"tag": "BEACH"}, headers=hx)
    assert re.findall(r'<a href="/tag/[^"]+">([^<]+)</a>', r.get_data(as_text=True)) == [
        "Road trip"
    ]
    page = client.get(f"/watch/{h}", headers=who.viewer).get_data(as_text=True)
    assert "Road trip" in page and 'id="rating"' in page and 'id="markers"' in page
    assert client.get(f"/watch/{h}/tags.json", headers=who.viewer).get_json() == {
        "tags": ["Road trip"]
    }


@pytest.mark.parametrize("bad", ["", "   ", "\x00\x01", "x" * 65])
def test_bad_tag_names_are_400(client, who, site, bad):
    r = client.post(f"/watch/{site.hash('h264')}/tags", data={"tag": bad}, headers=who.admin)
    assert r.status_code == 400


def test_unknown_media_is_404(client, who):
    assert (
        client.post(
            "/watch/0123456789abcdef/tags", data={"tag": "x"}, headers=who.admin
        ).status_code
        == 404
    )
    assert (
        client.post("/watch/nothex/tags", data={"tag": "x"}, headers=who.admin).status_code == 404
    )


def test_suggestions(client, who, site):
    client.post(
        f"/watch/{site.hash('hevc')}/tags", data={"tag": "Holiday, holland"}, headers=who.admin
    )
    html = client.get("/tags/suggest", query_string={"tag": "hol"}, headers=who.viewer).get_data(
        as_text=True
    )
    assert set(re.findall(r'<option value="([^"]+)">', html)) == {"Holiday", "holland"}


def test_bulk_add_remove_and_tag_page(client, who, site):
    picked = [site.hash(k) for k in ("ep1", "ep2", "ep3")]
    r = client.post(
        "/tags/bulk",
        data={
            "media": picked + ["zzzz", "0123456789abcdef"],
            "tag": "Series, Kids",
            "action": "add",
        },
        headers=who.admin,
    )
    assert r.get_json() == {"media": 3, "changed": 6, "tags": ["Series", "Kids"]}
    page = client.get("/tag/series", headers=who.viewer).get_data(as_text=True)
    assert sorted(hashes(page)) == sorted(picked)
    r = client.post(
        "/tags/bulk",
        data={"media": picked[:2], "tag": "kids", "action": "remove"},
        headers=who.admin,
    )
    assert r.get_json()["changed"] == 2
    assert hashes(client.get("/tag/Kids", headers=who.viewer).get_data(as_text=True)) == [picked[2]]
    assert (
        client.post(
            "/tags/bulk", data={"media": picked, "tag": "x", "action": "drop"}, headers=who.admin
        ).status_code
        == 400
    )
    assert client.get("/tag/nope", headers=who.viewer).status_code == 404
    assert "Series" in client.get("/tags", headers=who.viewer).get_data(as_text=True)


def test_rename_and_merge_need_admin(client, who, site):
    client.post(f"/watch/{site.hash('avi')}/tags", data={"tag": "old-one"}, headers=who.admin)
    r = client.post("/admin/tags/rename", data={"tag": "old-one", "new": "x"}, headers=who.viewer)
    assert r.status_code == 403
    r = client.post(
        "/admin/tags/merge", data={"tag": "old-one", "into": "Series"}, headers=who.admin
    )
    assert r.status_code == 303
    assert site.hash("avi") in hashes(
        client.get("/tag/Series", headers=who.viewer).get_data(as_text=True)
    )
    assert client.get("/tag/old-one", headers=who.viewer).status_code == 404
    r = client.post(
        "/admin/tags/rename", data={"tag": "Series", "new": "Holiday"}, headers=who.admin
    )
    assert r.status_code == 400  # exists: merge instead


def test_browse_filters(client, who, site):
    movies = f"/browse/{site.lib}/Movies"
    client.post(f"/watch/{site.hash('vp9')}/tags", data={"tag": "blue"}, headers=who.admin)
    assert hashes(
        client.get(movies, query_string={"tag": "BLUE"}, headers=who.viewer).get_data(as_text=True)
    ) == [site.hash("vp9")]
    client.post(f"/watch/{site.hash('hevc')}/rating", data={"stars": "4"}, headers=who.viewer)
    client.post(f"/watch/{site.hash('h264')}/rating", data={"stars": "2"}, headers=who.viewer)
    got = hashes(
        client.get(movies, query_string={"rating": "3"}, headers=who.viewer).get_data(as_text=True)
    )
    assert got == [site.hash("hevc")]
    by_rating = hashes(
        client.get(movies, query_string={"sort": "rating"}, headers=who.viewer).get_data(
            as_text=True
        )
    )
    assert by_rating[:2] == [site.hash("hevc"), site.hash("h264")]
    # another user's ratings are theirs
    assert (
        hashes(
            client.get(movies, query_string={"rating": "3"}, headers=who.admin).get_data(
                as_text=True
            )
        )
        == []
    )
    client.post(f"/watch/{site.hash('long')}/favorite", data={"on": "1"}, headers=who.viewer)
    fav = hashes(
        client.get(movies, query_string={"favorite": "1"}, headers=who.viewer).get_data(
            as_text=True
        )
    )
    assert fav == [site.hash("long")]
    client.post(
        f"/watch/{site.hash('h264')}/progress",
        data={"position": "1", "duration": "1.0"},
        headers=who.viewer,
    )
    unwatched = hashes(
        client.get(movies, query_string={"unwatched": "1"}, headers=who.viewer).get_data(
            as_text=True
        )
    )
    assert site.hash("hevc") in unwatched


def test_related_by_shared_tags(client, who, site):
    a, b = site.hash("bonus"), site.hash("hostile")
    client.post(
        "/tags/bulk", data={"media": [a, b], "tag": "rare-pair", "action": "add"}, headers=who.admin
    )
    html = client.get(f"/watch/{a}", headers=who.viewer).get_data(as_text=True)
    related = html.split('id="related"', 1)[1]
    assert hashes(related)[0] == b


def test_cache_sees_other_connections(site):
    """A write by another connection (another gunicorn worker) is never served stale."""
    cache = metacache.MetaCache()
    db1, db2 = dbmod.connect(site.settings.db_path), dbmod.connect(site.settings.db_path)
    try:
        mid = tags.media_id(db1, site.hash("picture"))
        assert tags.tags_of(db1, cache, mid) == ()
        assert tags.tags_of(db1, cache, mid) == ()
        hits = cache.stats().hits
        assert hits >= 1
        tags.change(db2, metacache.MetaCache(), [mid], ["elsewhere"], add=True)  # other process
        assert tags.tags_of(db1, cache, mid) == ("elsewhere",)
        tags.change(db1, cache, [mid], ["mine"], add=True)  # write-through: no miss after
        misses = cache.stats().misses
        assert tags.tags_of(db1, cache, mid) == ("elsewhere", "mine")
        assert cache.stats().misses == misses
    finally:
        db1.close()
        db2.close()


def test_duplicates_page(client, who, site):
    import shutil

    from tests.sample_library import scan_library

    assert "No file is in the library twice" in client.get(
        "/duplicates", headers=who.viewer
    ).get_data(as_text=True)
    (site.root / "Dupes").mkdir()
    shutil.copyfile(site.files["h264"], site.root / "Dupes" / "again.mp4")
    scan_library(site.settings)
    html = client.get("/duplicates", headers=who.viewer).get_data(as_text=True)
    assert hashes(html) == [site.hash("h264")]
    assert "Dupes/again.mp4" in html and "Movies/h264.mp4" in html and "2 copies" in html


def test_rating_and_views_sorts_page_by_keyset(site, who):
    """Paging a folder sorted by rating continues after the cursor, nothing lost or repeated."""
    from services.browse import browse
    from services.library import folders
    from services.organize import ratings

    db = dbmod.connect(site.settings.db_path)
    try:
        folder = folders.find_folder(db, site.settings.media_dirs, f"{site.lib}/Many")
        cache = metacache.MetaCache()
        first = browse.folder_page(
            db, folder.id, browse.Query(sort="rating"), user_id=who.viewer_id
        )
        for n, c in enumerate(first.cards[:10]):
            ratings.rate(db, cache, c.media_hash, who.viewer_id, 1 + n % 5)
        for sort in ("rating", "views"):
            query = browse.parse_query({"sort": sort})
            seen, after = [], None
            while True:
                page = browse.folder_page(
                    db, folder.id, query, user_id=who.viewer_id, after=after, limit=7
                )
                seen += [c.media_hash for c in page.cards]
                if page.after is None:
                    break
                after = page.after
            assert len(seen) == len(set(seen)) == 70
        top = browse.folder_page(
            db, folder.id, browse.parse_query({"sort": "rating"}), user_id=who.viewer_id
        )
        stars = [
            ratings.summary(db, cache, c.media_hash, who.viewer_id).your_rating or 0
            for c in top.cards
        ]
        assert stars == sorted(stars, reverse=True) and stars[0] == 5
    finally:
        db.close()
