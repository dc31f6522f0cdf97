"""A tag's page pages by keyset with infinite scroll, as folders do: every item exactly once,
newest first, stable while tags change between pages; 10,000 items; bad cursors are 400s."""

from __future__ import annotations

import re

import pytest

from services import db as dbmod
from services.organize import metacache, tags
from tests.conftest import signed_in

FRAGMENT = {"HX-Request": "true", "HX-Target": "more"}
CARD = re.compile(r'<a href="/watch/([0-9a-f]{16})"')
TITLE = re.compile(r'<span class="title">([^<]+)</span>')
NEXT = re.compile(r'<li id="more" class="more" hx-get="([^"]+)" hx-trigger="intersect once"')


def unescape(url: str) -> str:
    return url.replace("&amp;", "&")


def walk(client, url: str, headers: dict[str, str]) -> tuple[list[list[str]], list]:
    """Follow a tag page and its `more` fragments to the end; return the hashes per page."""
    first = client.get(url, headers=headers)
    assert first.status_code == 200 and "<html" in first.get_data(as_text=True)
    pages, responses = [CARD.findall(first.get_data(as_text=True))], [first]
    html = first.get_data(as_text=True)
    while found := NEXT.search(html):
        r = client.get(unescape(found.group(1)), headers={**headers, **FRAGMENT})
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and "<html" not in html, html[:200]
        assert "HX-Request, HX-Target" in r.headers["Vary"]
        pages.append(CARD.findall(html))
        responses.append(r)
    return pages, responses


@pytest.fixture(scope="module")
def everything(site, who):
    """Tag every indexed media of the sample library 'Everything'; return hashes, newest first."""
    db = dbmod.connect(site.settings.db_path)
    try:
        rows = db.execute(
            "SELECT m.media_hash FROM media m WHERE EXISTS "
            "(SELECT 1 FROM files f WHERE f.media_id = m.id AND f.present = 1) ORDER BY m.id DESC"
        ).fetchall()
    finally:
        db.close()
    hashes = [r[0] for r in rows]
    client = site.app.test_client()
    r = client.post("/tags/bulk", data={"media": hashes, "tag": "Everything"}, headers=who.admin)
    assert r.get_json()["media"] == len(hashes)
    return hashes


def test_more_than_one_page_every_item_once_newest_first(site, who, everything):
    assert len(everything) > 60  # the sample library's Many/ folder alone holds 70
    client = site.app.test_client()
    pages, responses = walk(client, "/tag/Everything", who.viewer)
    assert [len(p) for p in pages] == [60, len(everything) - 60]
    seen = [h for page in pages for h in page]
    assert seen == everything  # each exactly once, in order
    full = responses[0].get_data(as_text=True)
    assert (
        f"{len(everything)} items" in full
        and "HX-Request, HX-Target" in responses[0].headers["Vary"]
    )
    assert 'id="more"' not in responses[-1].get_data(as_text=True)  # the end: no sentinel


def test_without_js_the_more_link_opens_the_next_page(site, who, everything):
    client = site.app.test_client()
    html = client.get("/tag/Everything", headers=who.viewer).get_data(as_text=True)
    link = re.search(r'<a class="button" href="([^"]+)" hx-boost="false">More</a>', html)
    assert link
    r = client.get(unescape(link.group(1)), headers=who.viewer)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" in page and "Tag: Everything" in page
    assert CARD.findall(page) == everything[60:] and f"{len(everything)} items" in page


def test_paging_is_stable_while_tags_change(site, who, everything):
    """Keyset, not OFFSET: untagging a seen item between pages skips nothing still to come."""
    client = site.app.test_client()
    r = client.post("/tags/bulk", data={"media": everything, "tag": "Stable"}, headers=who.admin)
    assert r.status_code == 200
    first = client.get("/tag/Stable", headers=who.viewer).get_data(as_text=True)
    page1 = CARD.findall(first)
    gone = page1[:5] + everything[-1:]  # five already seen and the very last one
    r = client.post(
        "/tags/bulk", data={"media": gone, "tag": "Stable", "action": "remove"}, headers=who.admin
    )
    assert r.get_json()["changed"] == 6
    nxt = unescape(NEXT.search(first).group(1))
    rest = CARD.findall(client.get(nxt, headers={**who.viewer, **FRAGMENT}).get_data(True))
    assert rest == everything[60:-1]


@pytest.mark.parametrize(
    "after",
    ["abc", "-1", "1.5", "1e3", "0x10", "9" * 19, "9" * 25, "\u0663", "999999999", "%00", " 1"],
)
def test_a_malformed_cursor_is_a_400(site, who, everything, after):
    client = site.app.test_client()
    for headers in (who.viewer, {**who.viewer, **FRAGMENT}):
        r = client.get("/tag/Everything", query_string={"after": after}, headers=headers)
        assert r.status_code == 400, (after, r.status_code)
        assert "after: not a position in this list" in r.get_data(as_text=True)


def test_unknown_tag_is_404_and_pages_need_a_session(site, who):
    client = site.app.test_client()
    assert client.get("/tag/no-such-tag", headers=who.viewer).status_code == 404
    assert client.get("/tag/no-such-tag?after=5", headers=who.viewer).status_code == 404
    assert client.get("/tag/Everything").status_code in (302, 401)


def test_the_count_is_cached_until_a_tag_changes(site, who, everything):
    db = dbmod.connect(site.settings.db_path)
    try:
        cache = metacache.MetaCache()
        tag = tags.find(db, "Everything", count=False)
        assert tags.with_count(db, cache, tag).count == len(everything)
        assert tags.with_count(db, cache, tag).count == len(everything)
        assert cache.stats().hits == 1
        tags.change(db, metacache.MetaCache(), [1], ["Something else"], add=True)
        assert tags.with_count(db, cache, tag).count == len(everything)
        assert cache.stats().misses == 2  # another writer's change dropped the cached count
    finally:
        db.close()


def synthesize(data_dir, root, n: int) -> list[str]:
    """Insert n media tagged 'Big' (one file each) straight into SQLite; return hashes, newest first.

    Every tenth media also has an older copy that is missing (the card shows the present one);
    ten more media carry the tag but have no file present (never shown).
    """
    db = dbmod.open_db(data_dir)
    conn = db.conn
    try:
        with dbmod.write(db):
            conn.execute(
                "INSERT INTO libraries (id, root, name, state, added_at) "
                "VALUES (1, ?, 'lib', 'online', 0)",
                [str(root)],
            )
            conn.execute(
                "INSERT INTO folders (id, library_id, parent_id, path, rel_path, name) "
                "VALUES (1, 1, NULL, x'', '', '')"
            )
            conn.executemany(
                "INSERT INTO media (id, media_hash, kind, size, probe_status, added_at) "
                "VALUES (?, ?, 'video', 1000, 'ok', ?)",
                [(i, f"{i:016x}", i) for i in range(1, n + 11)],
            )
            files = [
                (i + 100_000, i, f"v{i}.mp4".encode(), f"v{i}.mp4", 1) for i in range(1, n + 1)
            ]
            files += [(i, i, f"old{i}.mp4".encode(), f"old{i}.mp4", 0) for i in range(10, n, 10)]
            files += [
                (n + 100_000 + i, n + i, f"gone{i}".encode(), "gone", 0) for i in range(1, 11)
            ]
            conn.executemany(
                "INSERT INTO files (id, media_id, library_id, folder_id, path, name, size, "
                "mtime_ns, present, first_seen) VALUES (?, ?, 1, 1, ?, ?, 1000, 0, ?, 0)",
                files,
            )
            conn.execute("INSERT INTO tags (id, name, created_at) VALUES (1, 'Big', 0)")
            conn.execute("INSERT INTO media_tags (media_id, tag_id) SELECT id, 1 FROM media")
    finally:
        db.close()
    return [f"{i:016x}" for i in range(n, 0, -1)]


def test_ten_thousand_items_page_through_the_app(app, library_dir):
    expected = synthesize(app.config["SETTINGS"].data_dir, library_dir, 10_000)
    viewer = signed_in(app, "viewer", "bob")
    pages, responses = walk(viewer, "/tag/Big", {})
    assert len(pages) == 167 and all(len(p) == 60 for p in pages[:-1]) and len(pages[-1]) == 40
    assert [h for page in pages for h in page] == expected
    assert "10010 items" in responses[0].get_data(as_text=True)  # tagged, shown or not
    # A card shows the present copy, never an older missing one.
    titles = [t for r in responses for t in TITLE.findall(r.get_data(as_text=True))]
    assert len(titles) == 10_000 and all(t.startswith("v") for t in titles)
