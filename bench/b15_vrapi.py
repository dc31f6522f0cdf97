"""B15: the DeoVR and HereSphere library answers at 1k and 100k videos, on a real server.

Rows are synthesized straight into SQLite (migrations applied): videos spread over folders of
100, a third of them VR-named (the parse rows carry 180° SBS, so the projection triggers fill
`projections` as a scan would), and for the bench user 500 favourites and 5 playlists of 100.
Two real gunicorn servers serve the 1k and the 100k database at once; one client on a
keep-alive connection asks them in turn — baseline `/health`, then `POST /heresphere` with an
auth-token and `POST /deovr` with the form login — so a noisy neighbour slows all alike. Each
answer is the whole library response (every section cut at 200 videos, at most 50 folder
sections: services/vrapi/catalog.py), so the 100k answer holds more entries (50 folder
sections) than the 1k one (10) but no more at 1M. Target: median ≤ 100 ms at 100k (not seconds,
as XBVR's 7–8 s for 2,300 scenes); the 100k/1k ratio and the cost per entry are shown.

    python -m bench.b15_vrapi [--rows 1000 100000] [--requests 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.b6_gallery import AUTH, server
from bench.harness import CORPUS_DIR, Bench, Samples

PER_FOLDER = 100
BATCH = 50_000
PASSWORD = "bench password"  # bench.harness.session_cookie makes the bench user with it


def synthesize(data_dir: Path, rows: int) -> Path:
    """Create (once) a database with `rows` videos in folders of PER_FOLDER; return the root."""
    root = CORPUS_DIR / "b15-library"
    root.mkdir(parents=True, exist_ok=True)
    marker = data_dir / f".complete-{rows}"
    if marker.exists():
        return root
    from services import db as dbmod

    for name in ("library.db", "library.db-wal", "library.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    db = dbmod.open_db(data_dir)
    rng = random.Random(rows)
    base = 1_600_000_000.0
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")
    folders = (rows + PER_FOLDER - 1) // PER_FOLDER
    with dbmod.write(db):
        conn.execute(
            "INSERT INTO libraries (id, root, name, state, added_at, last_scan_at) "
            "VALUES (1, ?, 'lib', 'online', ?, ?)",
            [str(root), base, base],
        )
        conn.execute(
            "INSERT INTO folders (id, library_id, parent_id, path, rel_path, name, file_count) "
            "VALUES (1, 1, NULL, x'', '', '', 0)"
        )
        conn.executemany(
            "INSERT INTO folders (id, library_id, parent_id, path, rel_path, name, file_count) "
            "VALUES (?, 1, 1, CAST(? AS BLOB), ?, ?, ?)",
            [(k + 2, f"f{k:05d}", f"f{k:05d}", f"f{k:05d}", PER_FOLDER) for k in range(folders)],
        )
    for start in range(1, rows + 1, BATCH):
        ids = range(start, min(rows, start + BATCH - 1) + 1)
        media, files, parses = [], [], []
        for i in ids:
            vr = i % 3 == 0
            w, h = (5760, 2880) if vr else (1920, 1080)
            name = f"scene {i:07d}" + ("_180_sbs.mp4" if vr else ".mp4")
            size = rng.randrange(200_000_000, 8_000_000_000)
            media.append((i, f"{i:016x}", size, rng.uniform(60, 3600), w, h, base + i))
            folder = (i - 1) // PER_FOLDER + 2
            files.append((i, i, folder, name.encode(), name, size, int((base + i) * 1e9), base + i))
            parses.append(
                (i, f"scene {i}", "180" if vr else "flat", "sbs" if vr else None,
                 "filename" if vr else "none")
            )  # fmt: skip
        with dbmod.write(db):
            conn.executemany(
                "INSERT INTO media (id, media_hash, kind, size, probe_status, container, duration, "
                "width, height, video_codec, audio_codec, added_at) "
                "VALUES (?, ?, 'video', ?, 'ok', 'mp4', ?, ?, ?, 'h264', 'aac', ?)",
                media,
            )
            conn.executemany(
                "INSERT INTO files (id, media_id, library_id, folder_id, path, name, size, "
                "mtime_ns, first_seen) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
                files,
            )
            conn.executemany(
                "INSERT INTO parses (file_id, title, projection, stereo, projection_source) "
                "VALUES (?, ?, ?, ?, ?)",
                parses,
            )
        print(f"  b15: {ids[-1]:,} of {rows:,} rows", end="\r", file=sys.stderr)
    conn.execute("ANALYZE")
    db.close()
    marker.touch()
    return root


def seed_user(data_dir: Path, rows: int) -> None:
    """Give the bench user 500 favourites and 5 playlists of 100 (after the server made it)."""
    from services import db as dbmod
    from services.people import users

    rng = random.Random(rows + 15)
    db = dbmod.open_db(data_dir)
    try:
        user = users.by_name(db, "bench")
        assert user is not None
        with dbmod.write(db):
            db.execute("DELETE FROM favorites WHERE user_id = ?", [user.id])
            db.execute("DELETE FROM playlists WHERE user_id = ?", [user.id])
            picks = rng.sample(range(1, rows + 1), min(500, rows))
            db.conn.executemany(
                "INSERT INTO favorites (user_id, media_id, added_at) VALUES (?, ?, ?)",
                [(user.id, m, float(k)) for k, m in enumerate(picks)],
            )
            for p in range(5):
                cur = db.conn.execute(
                    "INSERT INTO playlists (user_id, name, created_at) VALUES (?, ?, 0)",
                    [user.id, f"list {p}"],
                )
                db.conn.executemany(
                    "INSERT INTO playlist_items (playlist_id, media_id, position) VALUES (?, ?, ?)",
                    [(cur.lastrowid, m, k) for k, m in enumerate(rng.sample(range(1, rows + 1),
                                                                             min(100, rows)))],
                )  # fmt: skip
    finally:
        db.close()


class Client:
    """One keep-alive connection timing requests; checks every answer is a full library."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = ""

    def call(
        self, method: str, path: str, body: bytes = b"", headers: dict | None = None
    ) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.conn.request(method, path, body=body or None, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return took, data

    def login(self) -> None:
        body = json.dumps({"username": "bench", "password": PASSWORD}).encode()
        _, data = self.call("POST", "/heresphere/auth", body, {"Content-Type": "application/json"})
        self.token = json.loads(data)["auth-token"]

    def heresphere(self) -> tuple[float, int]:
        took, data = self.call("POST", "/heresphere", b"{}", {"auth-token": self.token,
                                                              "Content-Type": "application/json"})  # fmt: skip
        body = json.loads(data)
        assert body["access"] == 1
        return took, sum(len(s["list"]) for s in body["library"])

    def deovr(self) -> tuple[float, int]:
        form = urlencode({"login": "bench", "password": PASSWORD}).encode()
        took, data = self.call("POST", "/deovr", form,
                               {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        body = json.loads(data)
        assert body["authorized"] == "1"
        return took, sum(len(s["list"]) for s in body["scenes"])


def main() -> int:
    """Run B15 and write bench/out/b15.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[1_000, 100_000])
    parser.add_argument("--requests", type=int, default=60, help="per variant")
    args = parser.parse_args()
    small, large = args.rows
    dirs = {n: CORPUS_DIR / f"b15-data-{n}" for n in (small, large)}
    root = CORPUS_DIR / "b15-library"
    for n, d in dirs.items():
        root = synthesize(d, n)
    bench = Bench(
        "b15",
        f"DeoVR and HereSphere library answers at {small:,} and {large:,} videos",
        params={"rows": [small, large], "requests": args.requests},
    )
    with server(dirs[small], root) as (p_small, _), server(dirs[large], root) as (p_large, _):
        del AUTH[p_small], AUTH[p_large]  # the players sign in themselves
        for n in (small, large):
            seed_user(dirs[n], n)
        clients = {small: Client(p_small), large: Client(p_large)}
        health = Samples("/health")
        hs = {n: Samples(f"/heresphere {n:,}") for n in (small, large)}
        deo = {n: Samples(f"/deovr {n:,}") for n in (small, large)}
        entries: dict[str, int] = {}
        for c in clients.values():
            c.login()
            for _ in range(5):  # warm: templates, the page cache, the password check
                c.heresphere(), c.deovr(), c.call("GET", "/health")
        for _ in range(args.requests):
            health.add(clients[small].call("GET", "/health")[0])
            for n, c in clients.items():
                took, count = c.heresphere()
                hs[n].add(took)
                entries[f"heresphere {n}"] = count
                took, count = c.deovr()
                deo[n].add(took)
                entries[f"deovr {n}"] = count
        for name, samples in (("/heresphere", hs), ("/deovr", deo)):
            bench.compare(f"{name} median at {large:,} vs {small:,}", samples[small],
                          samples[large], headline=name == "/heresphere")  # fmt: skip
            bench.compare(f"{name} p95 at {large:,} vs {small:,}", samples[small], samples[large],
                          stat="p95")  # fmt: skip
            bench.compare(f"{name} median at {small:,} vs health", health, samples[small])
            bench.compare(f"{name} median at {large:,} vs health", health, samples[large])
    bench.extra["entries"] = entries
    worst = max(s.median for s in (hs[large], deo[large]))
    for n in (small, large):
        bench.note(
            f"{n:,} videos: /heresphere median {hs[n].median * 1000:.1f} ms, p95 "
            f"{hs[n].p(95) * 1000:.1f} ms; /deovr median {deo[n].median * 1000:.1f} ms, p95 "
            f"{deo[n].p(95) * 1000:.1f} ms ({entries[f'heresphere {n}']:,} entries; per entry "
            f"{hs[n].median / entries[f'heresphere {n}'] * 1e6:.1f} / "
            f"{deo[n].median / entries[f'deovr {n}'] * 1e6:.1f} µs)"
        )
    bench.note(f"health median {health.median * 1000:.2f} ms")
    bench.note(
        f"absolute: worst median at {large:,} {worst * 1000:.1f} ms (target ≤ 100 ms): "
        + ("PASS" if worst <= 0.1 else "FAIL")
    )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
