"""Screenshots of the household's pages at phone, desktop and headset/TV sizes (issues 16, 17).

    scripts/screenshots            # writes docs/screenshots/<page>-<size>.png
    scripts/screenshots --serve    # or: keep the server running to look around (Ctrl-C stops)
    scripts/screenshots --workers  # only the dashboard's Workers panel, with Redis and two workers

A real gunicorn serves the sample library of the tests (tests/sample_library.py, real media made
by ffmpeg) with a little history, a playlist and tags, and Debian's Chromium takes the pictures.
Shows, a show, a season and Movies come from the tests' Sonarr/Radarr/Kodi-style library
(tests/show_library.py: .nfo files, posters, fanart), served the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.chromium import chromium
from tests.conftest import browser_sign_in
from tests.mediagen import make_corpus
from tests.sample_library import Site
from tests.server import Gunicorn
from tests.show_library import ShowSite

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
# Three classes of screen: a phone in the hand, a laptop, a TV or headset across the room.
SIZES = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1440, "height": 900}, "has_touch": False},
    "tv": {"viewport": {"width": 1280, "height": 720}, "has_touch": True},
}


class ShotServer(Gunicorn):
    """gunicorn over a scanned library (the sample one, or the show library)."""

    def __init__(self, site: Site | ShowSite, more: dict[str, str] | None = None) -> None:
        self.site = site
        roots = site.roots if isinstance(site, ShowSite) else [site.root]
        env = {"LVS_MEDIA_DIRS": ":".join(str(r) for r in roots), "LVS_DATA_DIR": str(site.data)}
        env |= more or {}
        self.start(env | {"LVS_WORKERS": "1", "LVS_THREADS": "8"}, site.data / "gunicorn.log")


def make_sites(base: Path) -> tuple[Site, ShowSite]:
    """Return the scanned sample and show libraries in a new folder under `base` (ffmpeg media)."""
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    for name in ("corpus", "site", "shows"):
        (work / name).mkdir()
    corpus = make_corpus(work / "corpus")
    return Site(work / "site", corpus), ShowSite(work / "shows", corpus)


# Where the household signs in from, for the account page's list of sessions.
DEVICES = [
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) "
    "OculusBrowser/33.0.0.x SamsungBrowser/4.0 Chrome/126.0.6478.122 VR Safari/537.36",
]


# What the screenshots' own sessions say they are (the tests' sessions are named "pytest").
SIGNED_IN_FROM = {
    "phone": DEVICES[0],
    "desktop": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "tv": "Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
}


def name_session(site: Site, agent: str) -> None:
    """Give the session just started for the screenshots a browser's User-Agent."""
    from services import db as dbmod

    db = dbmod.open_db(site.data)
    try:
        with dbmod.write(db):
            db.execute("UPDATE sessions SET user_agent = ? WHERE user_agent = 'pytest'", [agent])
    finally:
        db.close()


def seed(tab, site: Site, url: str) -> None:
    """Give the admin a history, a playlist, tags and sessions, mostly through the app's forms."""
    from services import db as dbmod
    from services.people import sessions, users

    db = dbmod.open_db(site.data)
    try:
        admin = users.by_name(db, "test-admin")
        for n, agent in enumerate(DEVICES):
            sessions.create(db, admin.id, user_agent=agent, ip=f"192.168.1.{20 + n}")
    finally:
        db.close()
    tab.goto(url + "/")
    post = """async ([path, body]) => {
      const token = document.querySelector('meta[name=csrf-token]').content;
      const r = await fetch(path, {method: 'POST', body: new URLSearchParams(body),
                                   headers: {'X-CSRFToken': token}});
      return r.status;
    }"""
    watched = [("long", 130, 360), ("h264", 1, 2), ("ep1", 0.8, 2), ("hevc", 0.5, 2)]
    for key, position, duration in watched:
        body = {"position": str(position), "duration": str(duration), "viewing": "1"}
        tab.evaluate(post, [f"/watch/{site.hash(key)}/progress", body])
    for key, tag in [("h264", "holiday"), ("long", "holiday"), ("ep1", "show"), ("ep2", "show")]:
        tab.evaluate(post, [f"/watch/{site.hash(key)}/tags", {"tag": tag}])
    media = [site.hash(k) for k in ("ep1", "ep2", "ep3", "long")]
    tab.evaluate(
        """async ([media]) => {
      const token = document.querySelector('meta[name=csrf-token]').content;
      const body = new URLSearchParams([['name', 'Sunday evening'], ...media.map(m => ['media', m])]);
      await fetch('/playlists', {method: 'POST', body, headers: {'X-CSRFToken': token}});
    }""",
        [media],
    )


def show_pages(site: ShowSite) -> dict[str, str]:
    """Return the show library's pages to photograph: Shows, the first show, its season 1, Movies."""
    db = site.db()
    try:
        (show,) = db.execute("SELECT id FROM shows WHERE title = 'The Expanse'").fetchone()
    finally:
        db.close()
    return {
        "shows": "/shows",
        "show": f"/shows/{show}",
        "season": f"/shows/{show}/season/1",
        "movies": "/movies",
    }


def pages(site: Site) -> dict[str, str]:
    """Return the pages to photograph: name → path."""
    return {
        "home": "/",
        "folder": f"/browse/{site.lib}/Movies",
        "watch": f"/watch/{site.hash('long')}",
        "search": "/search?q=show",
        "playlists": "/playlists",
        "history": "/history",
        "account": "/account",
        "dashboard": "/admin/",
    }


SHIPPED = """() => {
  let css = 0, js = 0;
  for (const e of performance.getEntriesByType('resource')) {
    if (e.initiatorType === 'link' || e.name.includes('.css')) css += e.decodedBodySize;
    else if (e.initiatorType === 'script' || e.name.includes('.js')) js += e.decodedBodySize;
  }
  return [css, js];
}"""


def take(url: str, site: Site | ShowSite, out: Path, shots: dict[str, str] | None = None
         ) -> list[Path]:  # fmt: skip
    """Photograph every page of `site` (or `shots`) at every size into `out`; return the files
    written.

    Prints the CSS and JavaScript each page loads (bytes as served, a cold cache: phone size).
    The sample library is seeded with history, tags and a playlist first.
    """
    if shots is None:
        shots = show_pages(site) if isinstance(site, ShowSite) else pages(site)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with chromium() as browser:
        for size, options in SIZES.items():
            context = browser.new_context(device_scale_factor=1, **options)
            browser_sign_in(context, url, site.data)
            name_session(site, SIGNED_IN_FROM[size])
            tab = context.new_page()
            if size == "phone" and isinstance(site, Site):
                seed(tab, site, url)
            for name, path in shots.items():
                tab.goto(url + path)
                tab.wait_for_load_state("networkidle")
                if size == "phone":
                    css, js = tab.evaluate(SHIPPED)
                    print(
                        f"{name:10} CSS {css / 1024:5.1f} KiB  JS {js / 1024:5.1f} KiB", flush=True
                    )
                time.sleep(0.2)  # let images decode
                target = out / f"{name}-{size}.png"
                tab.screenshot(path=str(target), caret="initial")
                written.append(target)
            context.close()
    return written


def take_workers(site: Site, out: Path) -> list[Path]:
    """Photograph the dashboard's Workers panel (issue 18) with a real redis-server and two
    `flask worker` processes: dashboard-workers-<size>.png."""
    from tests.redis_server import RedisServer
    from tests.test_compute import SECRET
    from tests.test_workers import Workers

    base = site.data.parent
    (base / "redis").mkdir(exist_ok=True)
    redis = RedisServer(base / "redis")
    redis.start()
    workers = Workers(base, redis.url, site.root)
    server = None
    try:
        workers.start("attic")
        workers.start("den")
        server = ShotServer(site, {"LVS_REDIS_URL": redis.url, "LVS_NODE_SECRET": SECRET})
        os.killpg(workers.procs["den"].pid, signal.SIGSTOP)  # frozen: shown stale
        time.sleep(4)
        return take(
            server.url, site, out, {"dashboard-workers": "/admin/performance#workers-panel"}
        )
    finally:
        if "den" in workers.procs:
            os.killpg(workers.procs["den"].pid, signal.SIGCONT)
        if server is not None:
            server.stop()
        workers.stop_all()
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep the server running")
    parser.add_argument("--workers", action="store_true", help="only the Workers panel")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lvs-shots")
    args = parser.parse_args(argv)
    site, shows = make_sites(args.work)
    if args.workers:
        for path in take_workers(site, args.out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        return 0
    server = ShotServer(site)
    try:
        if args.serve:
            with chromium() as browser:
                context = browser.new_context()
                browser_sign_in(context, server.url, site.data)
                seed(context.new_page(), site, server.url)
                cookie = next(c["value"] for c in context.cookies() if c["name"] == "lvs_session")
            print(f"{server.url}  (cookie lvs_session={cookie}; data {site.data})", flush=True)
            while True:
                time.sleep(3600)
        written = take(server.url, site, args.out)
        server.stop()
        server = ShotServer(shows)
        written += take(server.url, shows, args.out)
        for path in written:
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
