"""Pages over a real scanned library: full pages and htmx fragments, sort, filter, keyset paging,
the watch page, health probes, Host checks and hostile /browse/ paths."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import signed_in
from tests.sample_library import HOSTILE_FOLDER, HOSTILE_VIDEO, Site

HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Site:
    return Site(tmp_path_factory.mktemp("pages"), media)


@pytest.fixture
def client(site: Site):
    return signed_in(site.app)


def titles(html: str) -> list[str]:
    """Return the card titles of a page, in order."""
    return re.findall(r'<span class="title">([^<]*)</span>', html)


def hashes(html: str) -> list[str]:
    return re.findall(
        r'<li class="card (?:video|picture)[^"]*">\s*<a href="/watch/([0-9a-f]{16})"', html
    )


def assert_fragment(response, region: str | None) -> str:
    """Check an htmx answer: the region only (its root carries the id), never the page."""
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "<head" not in html and "<body" not in html
    if region:
        assert re.match(rf'\s*<\w+ id="{region}"', html), html[:200]
    assert response.headers["Vary"].startswith("HX-Request, HX-Target")
    return html


def assert_full(response) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert html.startswith("<!doctype html>") and '<body hx-boost="true"' in html
    assert response.headers["Vary"].startswith("HX-Request, HX-Target")
    return html


# -- home ------------------------------------------------------------------------------------


def test_home_full_page(client, site):
    html = assert_full(client.get("/"))
    assert "Recently added" in html and "Folders" in html
    assert f'href="/browse/{site.lib}/Movies"' in html
    assert f'href="/browse/{site.lib}/Pictures"' in html
    assert len(hashes(html)) >= 10  # recently added: media with a present file
    assert 'id="continue-watching"' in html  # present, hidden while nothing is in progress


def test_home_fragment(client):
    html = assert_fragment(client.get("/", headers={**HX, "HX-Target": "recent"}), "recent")
    assert html.lstrip().startswith('<section id="recent"')
    assert "Folders" not in html


@pytest.mark.parametrize(
    "extra", [{"HX-Boosted": "true"}, {"HX-History-Restore-Request": "true"}, {"HX-Target": "x"}]
)
def test_boosted_navigation_and_history_restore_get_the_whole_page(client, extra):
    assert_full(client.get("/", headers={**HX, "HX-Target": "recent", **extra}))


# -- browse ----------------------------------------------------------------------------------


def test_browse_without_a_path_goes_home(client):
    response = client.get("/browse/")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_folder_full_page(client, site):
    html = assert_full(client.get(f"/browse/{site.lib}/Movies"))
    assert titles(html)[0] == "Extras"  # the subfolder card comes first
    assert titles(html)[1:] == [
        "h264",
        "hevc",
        "long",
        "mpeg4",
        "Show S01E01",
        "Show S01E02",
        "Show S01E03",
        "vp9",
    ]
    assert f'<a href="/browse/{site.lib}/Movies" aria-current="page">Movies</a>' in html
    assert f'<a href="/browse/{site.lib}">{site.lib}</a>' in html
    assert 'id="more"' not in html  # one page only
    assert 'hx-target="#listing"' in html


def test_folder_listing_fragment(client, site):
    response = client.get(
        f"/browse/{site.lib}/Movies?sort=size", headers={**HX, "HX-Target": "listing"}
    )
    html = assert_fragment(response, "listing")
    assert html.lstrip().startswith('<section id="listing"')
    assert "Extras" not in html  # subfolders are not part of the listing region


def test_sort_by_size_and_order(client, site):
    html = client.get(f"/browse/{site.lib}/Movies?sort=size").get_data(as_text=True)
    sizes = {p.stem.replace(".", " "): p.stat().st_size for p in (site.root / "Movies").glob("*.*")}
    shown = titles(html)[1:]
    assert [sizes[t] for t in shown] == sorted(sizes.values(), reverse=True)  # size: largest first
    html = client.get(f"/browse/{site.lib}/Movies?sort=size&order=asc").get_data(as_text=True)
    assert titles(html)[1:] == shown[::-1]


@pytest.mark.parametrize(
    ("sort", "asc", "desc"),
    [
        ("name", "A → Z", "Z → A"),
        ("added", "Oldest first", "Newest first"),
        ("quality", "Lowest quality first", "Best quality first"),
        ("rating", "Lowest rated first", "Highest rated first"),
        ("views", "Least watched first", "Most watched first"),
    ],
)
def test_the_order_menu_speaks_of_the_sort(client, site, sort, asc, desc):
    html = client.get(f"/browse/{site.lib}/Movies?sort={sort}").get_data(as_text=True)
    assert f">{asc}</option>" in html and f">{desc}</option>" in html


def test_sort_by_duration_puts_the_long_video_first(client, site):
    html = client.get(f"/browse/{site.lib}/Movies?sort=duration").get_data(as_text=True)
    assert titles(html)[1] == "long"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("codec=hevc", ["hevc"]),
        ("codec=vp9", ["vp9"]),
        ("length=medium", ["long"]),
        ("kind=picture", []),
        ("resolution=sd&codec=mpeg4", ["mpeg4"]),
        ("resolution=1080p", []),
    ],
)
def test_filters(client, site, query, expected):
    html = client.get(f"/browse/{site.lib}/Movies?{query}").get_data(as_text=True)
    shown = [t for t in titles(html) if t != "Extras"]
    assert shown == expected
    if not expected:
        assert "Nothing here matches these filters" in html
        assert "data-clear-filters" in html and "0 of 8 items match the filters" in html


def test_pictures_open_in_the_lightbox(client, site):
    html = client.get(f"/browse/{site.lib}/Pictures?kind=picture").get_data(as_text=True)
    assert len(re.findall(r"data-picture=\"/media/[0-9a-f]{16}/file\"", html)) == 5
    assert '<dialog id="lightbox"' in html


def test_keyset_paging_walks_every_item_once(client, site):
    url = f"/browse/{site.lib}/Many"
    first = assert_full(client.get(url))
    seen = titles(first)
    assert len(seen) == 60
    after = re.search(r'id="more"[^>]* hx-get="([^"]+)"', first)
    assert after, "a full page must end with the sentinel"
    nxt = client.get(after.group(1).replace("&amp;", "&"), headers={**HX, "HX-Target": "more"})
    html = assert_fragment(nxt, None)  # the last page: cards, no new sentinel
    assert "<section" not in html  # only cards for the sentinel's place
    rest = titles(html)
    assert 'id="more"' not in html  # the last page has no sentinel
    assert seen + rest == [f"p{n:03d}" for n in range(70)]


def test_keyset_paging_in_descending_order_with_a_filter(client, site):
    url = f"/browse/{site.lib}/Many?order=desc&kind=picture"
    first = client.get(url).get_data(as_text=True)
    link = re.search(r'id="more"[^>]* hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "order=desc" in link and "kind=picture" in link
    rest = client.get(link, headers={**HX, "HX-Target": "more"}).get_data(as_text=True)
    assert titles(first) + titles(rest) == [f"p{n:03d}" for n in reversed(range(70))]


@pytest.mark.parametrize("sort", ["name", "added", "duration", "size", "quality"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("filters", [{}, {"kind": "video", "codec": "h264", "length": "short"}])
def test_every_page_walks_an_index_without_sorting(site, sort, order, filters):
    from services import db as dbmod
    from services.browse import browse

    query = browse.Query(sort=sort, order=order, **filters)
    params = {"folder": 1, "user": 1, "limit": 61, "k": 0, "after": 1}
    db = dbmod.connect(site.settings.db_path)
    try:
        plan = [
            r[3]
            for r in db.execute(
                "EXPLAIN QUERY PLAN " + browse.page_sql(query, params, after=True), params
            )
        ]
    finally:
        db.close()
    index = f"files_by_{sort}"
    # The name index holds what a card reads from files: no file row is read for it.
    using = "COVERING INDEX" if sort == "name" else "INDEX"
    assert plan[0].startswith(f"SEARCH f USING {using} {index} (folder_id=? AND "), plan
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN") for step in plan), plan


@pytest.mark.parametrize(
    "query",
    [
        "sort=stars",
        "rating=6",
        "favorite=yes",
        "order=up",
        "kind=audio",
        "view=tiles",
        "after=x1",
        "after=99999999",
    ],
)
def test_bad_parameters_are_400(client, site, query):
    response = client.get(f"/browse/{site.lib}/Movies?{query}")
    assert response.status_code == 400
    assert "<html" in response.get_data(as_text=True)


HOSTILE = [
    "{lib}/../secret",
    "{lib}/%2e%2e/secret",
    "{lib}/Movies/../../secret",
    "{lib}/..%2fsecret",
    "{lib}/Movies%5c..%5c..%5csecret",
    "{lib}//Movies",
    "{lib}/./Movies",
    "{lib}-evil",
    "{lib}-evil/stolen",
    "..",
    "%2e%2e/%2e%2e/etc/passwd",
    "/etc/passwd",
    "{lib}/Movies/h264.mp4",
    "{lib}/Movies%00",
    "nolibrary/Movies",
]


@pytest.fixture(scope="module")
def opened() -> list[str]:
    """Record every path the process opens (sys.audit 'open') while `opened.on` is set."""
    events: list[str] = []
    state = {"on": False}

    def hook(event: str, args: tuple) -> None:
        if state["on"] and event in ("open", "os.listdir", "os.scandir") and args:
            target = args[0]
            if isinstance(target, bytes | str | Path):
                events.append(str(target if not isinstance(target, bytes) else target.decode()))

    sys.addaudithook(hook)  # audit hooks cannot be removed; `state` switches this one off
    yield events, state
    state["on"] = False


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_browse_paths_are_404_and_touch_nothing(client, site, opened, path):
    sibling = site.root.parent / f"{site.lib}-evil"
    sibling.mkdir(exist_ok=True)
    (sibling / "stolen").mkdir(exist_ok=True)
    (site.root.parent / "secret").mkdir(exist_ok=True)
    client.get("/")  # warm up: templates load once, outside the recorded window
    events, state = opened
    events.clear()
    state["on"] = True
    try:
        # follow_redirects: Werkzeug answers "//" with a 308 to the merged path, which must 404.
        response = client.get("/browse/" + path.format(lib=site.lib), follow_redirects=True)
    finally:
        state["on"] = False
    assert response.status_code == 404
    outside = [
        e
        for e in events
        if not e.startswith((str(site.data), sys.prefix, str(Path(__file__).parent.parent)))
    ]
    assert outside == []


def test_markup_in_names_is_shown_as_text(client, site):
    # The cards template prints without autoescape for speed and escapes titles itself.
    for url in (f"/browse/{site.lib}/Odd", "/", f"/watch/{site.hash('hostile')}"):
        html = client.get(url).get_data(as_text=True)
        assert "<img src=x" not in html and "<svg onload" not in html, url
    html = client.get(f"/browse/{site.lib}/Odd").get_data(as_text=True)
    title = re.search(r'<span class="title">([^<]*)</span>', html).group(1)
    assert title.startswith("&lt;img src=x onerror=alert") and "&#34;q&#34;" in title
    html = client.get("/").get_data(as_text=True)
    assert "&lt;svg onload=alert(2)&gt;" in html
    assert HOSTILE_FOLDER not in html and HOSTILE_VIDEO not in html


# -- watch page ------------------------------------------------------------------------------


def test_watch_page_full(client, site):
    h = site.hash("ep2")
    html = assert_full(client.get(f"/watch/{h}"))
    assert f'<video src="/media/{h}/file" poster="/media/{h}/thumb"' in html
    assert f'data-progress="/watch/{h}/progress"' in html
    assert f'href="/media/{h}/file?download=1" download hx-boost="false"' in html
    assert f'id="next-link" rel="next" href="/watch/{site.hash("ep3")}"' in html
    assert f'id="prev-link" rel="prev" href="/watch/{site.hash("ep1")}"' in html
    for text in ("Show S01E02", "0:02", "320 × 240", "h264", "aac", "Show.S01E02.mp4"):
        assert text in html, text
    related = html.split('id="related"')[1]
    assert site.hash("ep1") in related and site.hash("ep3") in related  # same series
    assert "may not play" not in html


def test_watch_fragment(client, site):
    h = site.hash("ep2")
    html = assert_fragment(
        client.get(f"/watch/{h}", headers={**HX, "HX-Target": "related"}), "related"
    )
    assert html.lstrip().startswith('<section id="related"')
    assert site.hash("ep1") in html


def test_watch_page_of_a_file_browsers_cannot_play(client, site):
    html = assert_full(client.get(f"/watch/{site.hash('hevc')}"))
    assert "This file may not play in your browser" in html
    assert "HEVC video needs transcoding" in html
    assert "container MKV is not playable in every browser" in html
    assert "Download" in html and 'data-action="try"' in html


def test_watch_page_of_a_picture(client, site):
    h = site.hash("photo")
    html = assert_full(client.get(f"/watch/{h}"))
    assert f'<img src="/media/{h}/file"' in html and "<video" not in html
    assert 'id="prev-link"' in html and 'id="next-link"' in html  # p05 before it, picture.png after


@pytest.mark.parametrize("h", ["0123456789abcdef", "XYZ", "0123456789ABCDEF", "../../etc"])
def test_unknown_media_is_404(client, h):
    assert client.get(f"/watch/{h}").status_code == 404


def test_a_handful_of_queries_per_page(site, monkeypatch):
    from services import db as dbmod

    counts: list[int] = []
    real = dbmod.connect

    def counting(path):
        db = real(path)
        counts.append(0)
        index = len(counts) - 1

        def trace(sql: str) -> None:
            counts[index] += 1

        db.conn.set_trace_callback(trace)
        return db

    monkeypatch.setattr(dbmod, "connect", counting)
    client = signed_in(site.app)
    limits = {
        "/": 14,
        f"/browse/{site.lib}/Many": 8,
        f"/browse/{site.lib}/Movies": 8,
        f"/watch/{site.hash('ep2')}": 14,
    }
    for url, limit in limits.items():
        counts.clear()
        assert client.get(url).status_code == 200
        assert sum(counts) <= limit, (url, sum(counts))
    # 70 cards or 8: the same number of queries (never one per row).
    counts.clear()
    client.get(f"/browse/{site.lib}/Many")
    many = sum(counts)
    counts.clear()
    client.get(f"/browse/{site.lib}/Pictures")
    assert many == sum(counts)


# -- health, hosts, headers ------------------------------------------------------------------


def test_health_probes(client, site):
    assert client.get("/health").data == b"ok\n"
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {
        "ready": True,
        "database": "ok",
        "libraries": [{"root": str(site.root), "state": "online"}],
    }


def test_not_ready_before_the_first_scan(tmp_path):
    from app import create_app

    app = create_app({"media_dirs": [str(tmp_path / "media")], "data_dir": str(tmp_path / "d")})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["ready"] is False


def test_not_ready_when_the_database_is_gone(tmp_path):
    from app import create_app

    app = create_app({"media_dirs": [str(tmp_path / "media")], "data_dir": str(tmp_path / "d")})
    db_path = tmp_path / "d" / "library.db"
    db_path.unlink()
    db_path.mkdir()  # a directory where the database was: sqlite cannot open it
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["database"].startswith("error")


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8080", 200),
        ("192.168.1.20", 200),
        ("[fe80::1]:8080", 200),
        ("localhost:8080", 200),
        ("nas", 200),
        ("nas.local", 200),
        ("media.lan:8080", 200),
        ("evil.example.com", 400),
        ("192.168.1.20.nip.io", 400),
        ("attacker.com:8080", 400),
    ],
)
def test_host_checking_auto(client, host, status):
    assert client.get("/health", headers={"Host": host}).status_code == status


def test_host_checking_explicit_list(tmp_path):
    from app import create_app

    app = create_app(
        {
            "media_dirs": [str(tmp_path / "m")],
            "data_dir": str(tmp_path / "d"),
            "trusted_hosts": "tv.example.com .home.example.org",
        }
    )
    c = signed_in(app)
    assert c.get("/health", headers={"Host": "tv.example.com"}).status_code == 200
    assert c.get("/health", headers={"Host": "a.home.example.org:80"}).status_code == 200
    assert c.get("/health", headers={"Host": "192.168.1.20"}).status_code == 400
    assert c.get("/health", headers={"Host": "example.com"}).status_code == 400


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_static_files_are_versioned_and_cached(client):
    html = client.get("/").get_data(as_text=True)
    css = re.search(r'href="(/static/v/[0-9a-f]{10}/css/page\.css)"', html).group(1)
    response = client.get(css)
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # One render-blocking style sheet: every page's parts, joined in their cascade order.
    text = response.get_data(as_text=True)
    parts = ["app.css", "ui.css", "vr.css", "player-menu.css", "live.css"]
    assert [text.index(f"/* css/{p} */") for p in parts] == sorted(
        text.index(f"/* css/{p} */") for p in parts
    )
    assert (Path(__file__).parent.parent / "static/css/ui.css").read_text() in text
    assert client.get(css, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    assert html.count('rel="stylesheet"') == 1
    # app.js's imports resolve under the same versioned folder: cached as long.
    module = css.replace("css/page.css", "js/player.js")
    assert client.get(module).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # An unversioned or outdated URL still answers, but is revalidated each time.
    plain = client.get("/static/vendor/htmx/htmx.min.js")
    assert plain.status_code == 200 and "immutable" not in plain.headers["Cache-Control"]
    assert "no-cache" in plain.headers["Cache-Control"]
    old = client.get("/static/v/0000000000/css/app.css")
    assert old.status_code == 200 and old.headers["Cache-Control"] == "no-cache"
    assert client.get(css.replace("page.css", "nope.css")).status_code == 404
    assert client.get(css.replace("css/page.css", "../app.py")).status_code == 404


def test_no_template_compiled_per_request():
    # SPEC §5 trap: render_template_string compiles on every request (3× slower pages).
    root = Path(__file__).parent.parent
    sources = [*root.glob("blueprints/*.py"), root / "app.py"]
    assert not [p for p in sources if "render_template_string" in p.read_text()]


def test_unknown_route_is_a_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "<html" in response.get_data(as_text=True)


def test_every_region_root_has_its_id():
    root = Path(__file__).parent.parent / "templates"
    for partial in root.glob("*/_*.html"):
        region = partial.stem[1:].replace("_", "-")
        assert f'id="{region}"' in partial.read_text(), partial
