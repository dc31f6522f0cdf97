"""Playlists: create, add one or a selection, reorder, remove, play all and shuffle (the watch
page's next link follows the playlist), per-user privacy."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.organize_util import Users


def order(html: str) -> list[str]:
    return re.findall(r'<li data-hash="([0-9a-f]{16})">', html)


def make(client, who: Users, name: str, hashes: list[str]) -> int:
    r = client.post(
        "/playlists",
        data={"name": name, "media": hashes},
        headers={**who.viewer, "Accept": "application/json"},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["id"]


def test_create_add_reorder_remove(client, who, site):
    a, b, c = (site.hash(k) for k in ("ep1", "ep2", "ep3"))
    pid = make(client, who, "  Evening  ", [a, b])
    r = client.post(f"/playlists/{pid}/add", data={"media": [c]}, headers=who.viewer)
    assert r.get_json() == {"added": 1}
    html = client.get(f"/playlists/{pid}", headers=who.viewer).get_data(as_text=True)
    assert order(html) == [a, b, c] and "<h1>Evening" in html
    items = re.findall(r"/playlists/\d+/items/(\d+)/up", html)
    hx = {**who.viewer, "HX-Request": "true", "HX-Target": "playlist-items"}
    r = client.post(f"/playlists/{pid}/items/{items[2]}/up", headers=hx)
    assert re.match(r'\s*<section id="playlist-items"', r.get_data(as_text=True))
    assert order(r.get_data(as_text=True)) == [a, c, b]
    r = client.post(f"/playlists/{pid}/items/{items[0]}/remove", headers=hx)
    assert order(r.get_data(as_text=True)) == [c, b]
    assert client.post(f"/playlists/{pid}/items/{items[1]}/sideways", headers=hx).status_code == 400
    listing = client.get("/playlists.json", headers=who.viewer).get_json()
    assert listing == {"playlists": [{"id": pid, "name": "Evening", "count": 2}]}


def test_play_all_follows_the_playlist(client, who, site):
    a, b = site.hash("hevc"), site.hash("bonus")
    pid = make(client, who, "Mixed", [a, b])
    r = client.get(f"/playlists/{pid}/play", headers=who.viewer)
    assert r.status_code == 303
    first = r.headers["Location"]
    assert first.startswith(f"/watch/{a}?")
    html = client.get(first, headers=who.viewer).get_data(as_text=True)
    assert "Mixed</a>: 1 of 2" in html
    nxt = re.search(r'id="next-link" rel="next" href="([^"]+)"', html).group(1)
    assert nxt.startswith(f"/watch/{b}?") and "pos=1" in nxt
    html = client.get(nxt.replace("&amp;", "&"), headers=who.viewer).get_data(as_text=True)
    assert "2 of 2" in html and 'id="next-link"' not in html  # the end of the playlist


def test_shuffle_plays_every_item_once(client, who, site):
    keys = ("ep1", "ep2", "ep3", "h264", "vp9")
    pid = make(client, who, "Shuffle", [site.hash(k) for k in keys])
    target = client.get(f"/playlists/{pid}/play?shuffle=1", headers=who.viewer).headers["Location"]
    seen = []
    while target:
        seen.append(urlsplit(target).path.rsplit("/", 1)[1])
        assert parse_qs(urlsplit(target).query)["seed"][0] != "0"
        html = client.get(target, headers=who.viewer).get_data(as_text=True)
        m = re.search(r'id="next-link" rel="next" href="([^"]+)"', html)
        target = m.group(1).replace("&amp;", "&") if m else None
    assert sorted(seen) == sorted(site.hash(k) for k in keys)


def test_other_users_playlists_are_private(client, who, site):
    pid = make(client, who, "Mine", [site.hash("h264")])
    assert client.get(f"/playlists/{pid}", headers=who.admin).status_code == 404
    r = client.post(f"/playlists/{pid}/add", data={"media": [site.hash("vp9")]}, headers=who.admin)
    assert r.status_code == 404
    assert client.post(f"/playlists/{pid}/delete", headers=who.admin).status_code == 404
    assert client.post(f"/playlists/{pid}/delete", headers=who.viewer).status_code == 303
    assert client.get(f"/playlists/{pid}", headers=who.viewer).status_code == 404


def test_bad_names(client, who):
    assert client.post("/playlists", data={"name": "  "}, headers=who.viewer).status_code == 400
    r = client.post("/playlists", data={"name": "x" * 101}, headers=who.viewer)
    assert r.status_code == 400


def test_moving_an_item_keeps_items_whose_file_is_missing(client, who, site):
    a, b, c = (site.hash(k) for k in ("ep1", "ep2", "ep3"))
    pid = make(client, who, "Gaps", [a, b, c])
    from services import db as dbmod

    db = dbmod.connect(site.settings.db_path)
    hidden = (
        "UPDATE files SET present = ? WHERE media_id = (SELECT id FROM media WHERE media_hash = ?)"
    )
    with dbmod.write(db):
        db.execute(hidden, [0, b])
    try:
        html = client.get(f"/playlists/{pid}", headers=who.viewer).get_data(as_text=True)
        assert order(html) == [a, c]
        items = re.findall(r"/playlists/\d+/items/(\d+)/down", html)
        r = client.post(f"/playlists/{pid}/items/{items[0]}/down", headers=who.viewer)
        assert r.status_code in (200, 303)
    finally:
        with dbmod.write(db):
            db.execute(hidden, [1, b])
        db.close()
    html = client.get(f"/playlists/{pid}", headers=who.viewer).get_data(as_text=True)
    assert order(html) == [c, b, a] or order(html) == [c, a, b]  # b back, nothing lost
    assert sorted(order(html)) == sorted([a, b, c])


def test_a_refused_selection_creates_no_playlist(client, who, site):
    too_many = [f"{n:016x}" for n in range(5001)]
    r = client.post("/playlists", data={"name": "bulk", "media": too_many}, headers=who.viewer)
    assert r.status_code == 400
    names = [
        p["name"] for p in client.get("/playlists.json", headers=who.viewer).get_json()["playlists"]
    ]
    assert "bulk" not in names


def test_a_stale_playlist_link_still_plays_the_video(client, who, site):
    r = client.get(f"/watch/{site.hash('ep1')}?playlist=999999&pos=0", headers=who.viewer)
    assert r.status_code == 200
