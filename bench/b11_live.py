"""B11: live pages (issue 19) — what idle open tabs cost, how fast a change reaches the screen,
and how much the service worker keeps.

1. Page p95 with 0 and with 100 idle live tabs, through the real server (gunicorn.conf.py: its
   gthread workers and threads) on a synthesized 20,000-item folder. The idle tabs are a
   separate process of 100 asyncio clients, each on its own keep-alive connection with a
   signed-in session, asking /live/feed?since=<token> every POLL seconds (live.js's rate, with
   jitter) and getting 204s. One client times folder pages (60 cards, deep keyset pages) on its
   own connection; the idle process is stopped (SIGSTOP) and continued (SIGCONT) between blocks,
   so the two conditions alternate and a noisy neighbour slows both alike. Target: p95 with
   100 idle tabs ≤ 1.2× p95 with none.
2. Change to screen: the real server following a real folder with inotify (the default
   LVS_WATCH_DEBOUNCE 1.0 s and LVS_WATCH_SETTLE 0.5 s), Debian's Chromium showing the folder;
   a new video is copied in at a random moment and the time until its card is on the page is
   taken, over --changes copies.
3. The service worker's caches after browsing 1,000 items: Chromium scrolls a folder of 1,000
   items (real thumbnail files) to the end; the worker then says what each cache holds.

    python -m bench.b11_live [--requests 400] [--idle 100] [--changes 15] [--skip-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.b6_gallery import Client, page_paths, server, synthesize
from bench.harness import CORPUS_DIR, ROOT, Bench, Samples, ffmpeg_exe, session_cookie

POLL = 2.0  # seconds between a visible tab's polls (blueprints/live.py POLL_MS)
ROWS = 20_000


# -- the idle tabs (a process of their own) ------------------------------------------------------


async def _idle_client(
    port: int, cookie: str, token: str, stats: dict, stop: asyncio.Event
) -> None:
    request = (
        f"GET /live/feed?since={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Cookie: {cookie}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    await asyncio.sleep(random.uniform(0, POLL))
    reader = writer = None
    while not stop.is_set():
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
            stats["status"][status] = stats["status"].get(status, 0) + 1
            stats["latency"].append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError):
            stats["errors"] += 1  # the server closed an idle keep-alive connection: reconnect
            if writer is not None:
                writer.close()
            writer = None
            continue
        await asyncio.sleep(POLL * random.uniform(0.9, 1.1))


def idle_tabs(port: int, n: int, cookie: str, token: str) -> None:
    """Run n idle live tabs until SIGTERM; then print their numbers as one JSON line."""
    stats: dict = {"status": {}, "latency": [], "errors": 0}

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        started = time.monotonic()
        await asyncio.gather(*(_idle_client(port, cookie, token, stats, stop) for _ in range(n)))
        stats["seconds"] = time.monotonic() - started

    asyncio.run(main())
    lat = sorted(stats.pop("latency"))
    stats["requests"] = len(lat)
    stats["p50_ms"] = round(1000 * lat[len(lat) // 2], 2) if lat else None
    stats["p95_ms"] = round(1000 * lat[int(len(lat) * 0.95)], 2) if lat else None
    print(json.dumps(stats), flush=True)


def idle_cost(bench: Bench, requests: int, idle: int) -> None:
    data = CORPUS_DIR / "b11-data"
    root = synthesize(data, ROWS)
    rng = random.Random(11)
    with server(data, root) as (port, _):
        cookie = session_cookie(data)["Cookie"]
        client = Client(port)
        for path in page_paths(ROWS, 40, rng):  # templates compiled, database warm
            client.get(path)
        token = _token(client)
        tabs = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.b11_live",
                "--idle-tabs",
                str(port),
                str(idle),
                cookie,
                token,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        none, busy = Samples("page, no live tabs"), Samples(f"page, {idle} idle live tabs")
        running = 0.0  # seconds the tabs were let run
        try:
            block = 50
            paths = page_paths(ROWS, 2 * requests, rng)
            for k in range(0, 2 * requests, 2 * block):
                # The same wait before both blocks: a full poll period, so that every tab has
                # asked at least once (after SIGCONT) or has long stopped (after SIGSTOP).
                os.kill(tabs.pid, signal.SIGSTOP)
                time.sleep(POLL)
                for path in paths[k : k + block]:
                    none.add(client.get(path))
                os.kill(tabs.pid, signal.SIGCONT)
                resumed = time.monotonic()
                time.sleep(POLL)
                for path in paths[k + block : k + 2 * block]:
                    busy.add(client.get(path))
                running += time.monotonic() - resumed
        finally:
            os.kill(tabs.pid, signal.SIGCONT)
            tabs.terminate()
            out, _ = tabs.communicate(timeout=30)
        polled = json.loads(out.strip().splitlines()[-1])
        bench.compare(
            f"page p95, {idle} idle live tabs / none",
            none,
            busy,
            target=1.2,
            stat="p95",
            headline=True,
        )
        bench.extra["idle_tabs"] = polled
        polled["running_s"] = round(running, 1)
        rate = polled["requests"] / max(running, 1e-9)
        bench.note(
            f"{idle} idle tabs asked {polled['requests']} times in the {running:.0f} s they ran "
            f"({rate:.0f}/s; {idle / POLL:.0f}/s is one poll per tab per {POLL:.0f} s); answers "
            f"{polled['status']}, p50 {polled['p50_ms']} ms, p95 {polled['p95_ms']} ms; "
            f"reconnects {polled['errors']}"
        )


def _token(client: Client) -> str:
    client.conn.request("GET", "/", headers=client.auth)
    body = client.conn.getresponse().read().decode()
    return body.split('data-token="', 1)[1].split('"', 1)[0]


# -- change to screen ------------------------------------------------------------------------


def _clip(path: Path) -> Path:
    if not path.exists():
        subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=10:duration=2",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
    return path


def _variant(src: Path, dst: Path, n: int) -> None:
    """Copy an MP4 with a trailing free box: the same video, another media_hash."""
    box = (8 + n).to_bytes(4, "big") + b"free" + bytes([n % 251]) * n
    tmp = dst.with_name(f".{dst.name}.part")
    tmp.write_bytes(src.read_bytes() + box)
    tmp.rename(dst)  # whole at once, as a finished copy is


def change_to_screen(bench: Bench, changes: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.chromium import ARGS, CHROMIUM
    from tests.server import Gunicorn

    base = CORPUS_DIR / "b11-live"
    shutil.rmtree(base, ignore_errors=True)
    folder = base / "library" / "incoming"
    folder.mkdir(parents=True)
    clip = _clip(CORPUS_DIR / "b11-clip.mp4")
    for n in range(5):
        _variant(clip, folder / f"a{n:02d}.mp4", n + 1)
    (base / "data").mkdir()
    srv = Gunicorn()
    srv.start(
        {
            "LVS_MEDIA_DIRS": str(base / "library"),
            "LVS_DATA_DIR": str(base / "data"),
            "LVS_WATCH": "events",
        },
        base / "gunicorn.log",
    )
    took = Samples("change to screen")
    try:
        cookie = session_cookie(base / "data")["Cookie"].split("=", 1)[1]
        deadline = time.monotonic() + 60
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context()
            context.add_cookies([{"name": "lvs_session", "value": cookie, "url": srv.url}])
            page = context.new_page()
            while True:  # the start-up scan has indexed the folder
                page.goto(f"{srv.url}/browse/library/incoming")
                if page.locator("#listing li.card").count() == 5 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            rng = random.Random(12)
            for n in range(changes):
                time.sleep(rng.uniform(0.5, 2.5))  # any moment of the page's poll cycle
                name = f"b{n:02d}"
                started = time.perf_counter()
                _variant(clip, folder / f"{name}.mp4", 100 + n)
                shown = (
                    "[...document.querySelectorAll('#listing li.card .title')]"
                    f".some(t => t.textContent === '{name}')"
                )
                while not page.evaluate(shown):
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"{name} never showed")
                    time.sleep(0.02)
                took.add(time.perf_counter() - started)
            browser.close()
    finally:
        srv.stop()
    bench.extra["change_to_screen_s"] = [round(v, 3) for v in took.values]
    bench.extra["change_to_screen"] = {q: round(took.p(q), 3) for q in (0, 50, 90, 95, 100)}
    bench.note(
        f"change to screen over {len(took.values)} copies: min {took.p(0):.2f} s, "
        f"p50 {took.p(50):.2f} s, p95 {took.p(95):.2f} s, max {took.p(100):.2f} s "
        "(watcher debounce 1.0 s + settle 0.5 s + scan + poll ≤ 2 s + the region fetch)"
    )


# -- the service worker's caches -------------------------------------------------------------


def worker_cache(bench: Bench, items: int = 1_000) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from services.previews.thumbnails import thumb_path
    from tests.chromium import ARGS, CHROMIUM

    data = CORPUS_DIR / "b11-sw-data"
    root = synthesize(data, items)
    import sqlite3

    conn = sqlite3.connect(data / "library.db")
    hashes = [h for (h,) in conn.execute("SELECT media_hash FROM media")]
    conn.close()
    rng = random.Random(13)
    for h in hashes:  # a real thumbnail for each: a 320x180 JPEG of noise and colour
        path = thumb_path(data, h)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.effect_noise((320, 180), 40).convert("RGB")
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (0, 0, 160, 90))
        image.save(path, quality=80)
    with server(data, root) as (port, _):
        cookie = session_cookie(data)["Cookie"].split("=", 1)[1]
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies([{"name": "lvs_session", "value": cookie, "url": url}])
            page = context.new_page()
            page.goto(f"{url}/browse/lib/big")
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            page.reload()
            assert page.evaluate("navigator.serviceWorker.controller !== null")
            seen = 0
            for _ in range(400):
                page.mouse.wheel(0, 2000)
                time.sleep(0.15)
                seen = page.locator("#cards li.card").count()
                if seen >= items and page.locator("#more").count() == 0:
                    break
            page.mouse.wheel(0, 100_000)
            time.sleep(2)
            loaded = page.evaluate(
                "[...document.querySelectorAll('#cards img')].filter(i => i.complete && i.naturalWidth).length"
            )
            sizes = page.evaluate(
                """new Promise(done => {
                    navigator.serviceWorker.addEventListener('message', e => done(e.data.cacheSize), {once: true});
                    navigator.serviceWorker.controller.postMessage('lvs-cache-size');
                })"""
            )
            browser.close()
    bench.extra["sw_cache_after_items"] = {"items": seen, "thumbs_loaded": loaded, "caches": sizes}
    total = sum(c["bytes"] for c in sizes.values())
    parts = ", ".join(
        f"{name}: {c['entries']} entries, {c['bytes'] / 1e6:.2f} MB" for name, c in sizes.items()
    )
    bench.note(
        f"service worker after scrolling {seen} items ({loaded} thumbnails shown): {parts}; "
        f"{total / 1e6:.2f} MB in all (thumbnails bounded at 500)"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--idle-tabs":
        port, n, cookie, token = sys.argv[2:6]
        idle_tabs(int(port), int(n), cookie, token)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="pages timed per condition")
    parser.add_argument("--idle", type=int, default=100, help="idle live tabs")
    parser.add_argument("--changes", type=int, default=15, help="files copied for the latency")
    parser.add_argument("--skip-browser", action="store_true", help="only the idle-tab cost")
    args = parser.parse_args()
    bench = Bench(
        "b11",
        "live pages: idle tabs' cost, change to screen, service worker cache",
        params={"requests": args.requests, "idle": args.idle, "poll_s": POLL, "rows": ROWS},
    )
    idle_cost(bench, args.requests, args.idle)
    if not args.skip_browser:
        change_to_screen(bench, args.changes)
        worker_cache(bench)
    bench.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
