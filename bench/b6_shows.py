"""B6 for the Shows and Movies pages (issue 17): deep keyset pages at 100k and 1M items.

Rows are synthesized straight into SQLite (migrations applied; files, media, parses and the
grouped tables filled as a scan and services/shows.grouping would): half the items are episodes
of shows of 50 episodes (5 seasons of 10), half are films, one in ten of them in two versions,
one in three with a poster, each title with one to three genres (GENRES: Drama on 45%, Western
on 1%). Two real gunicorn servers serve the 100k and the 1M database; one keep-alive client asks
in turn — baseline `/health`, then a Shows page, a Movies page (sorts in turn: title, year,
added, rating, quality) and a filtered Movies page (the sorts in turn, each with each of
FILTERS) on each server, each continuing after a random show or film, so every depth is
sampled. Targets: page p95 ≤ 3× the health floor at 100k; p95 at 1M ≤ 1.3× p95 at 100k (flat).

    python -m bench.b6_shows [--rows 100000 1000000] [--requests 400]
    python -m bench.b6_shows --sql     # the pages' queries in-process, CPU ms (see sql_rows)
    python -m bench.b6_shows --cpu     # the server's CPU per request, pages vs /health (cpu_rows)
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote

from bench.b6_gallery import WORDS, server
from bench.b6_gallery import Client as _Client
from bench.harness import CORPUS_DIR, Bench, Samples

SORTS = ("title", "year", "added", "rating", "quality")
# The filtered Movies pages' filters, in turn: a common and a rare genre, a year, a decade, both.
FILTERS = ("genre=Drama", "genre=Western", "year=1995", "year=1990s", "genre=Crime&year=1990s")


class Client(_Client):
    """The keep-alive client, opening a new connection when the server closed an idle one.

    gunicorn closes a connection idle for `keepalive` (5 s); on a loaded machine a pause that
    long happens. The request is then asked again on a new connection, and that one is timed.
    """

    def get(self, path: str, headers: dict[str, str] | None = None) -> float:
        try:
            return super().get(path, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            return super().get(path, headers)


EPISODES_PER_SHOW = 50
# Genres as Kodi names them, with how often a title has each (one to three a title).
GENRES = {"Drama": 0.45, "Comedy": 0.3, "Thriller": 0.2, "Action": 0.2, "Crime": 0.12,
          "Romance": 0.1, "Documentary": 0.05, "Horror": 0.05, "Western": 0.01}  # fmt: skip


def _genres(rng: random.Random) -> list[str]:
    got = [g for g, p in GENRES.items() if rng.random() < p][:3]
    return got or ["Drama"]


BATCH = 50_000


def synthesize(data_dir: Path, rows: int) -> Path:
    """Create (once) a database with `rows` items: shows' episodes and films; return the root."""
    root = CORPUS_DIR / "b6-shows-library"
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
    started = time.perf_counter()
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")
    # The triggers (search index, live changes) would cost 2 ms a row; the pages measured here
    # read none of what they write. Dropped while filling, made again after (the search index
    # stays empty).
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    n_eps = rows // 2
    n_shows = max(1, n_eps // EPISODES_PER_SHOW)
    with dbmod.write(db):
        conn.execute(
            "INSERT INTO libraries (id, root, name, state, added_at, last_scan_at) "
            "VALUES (1, ?, 'lib', 'online', ?, ?)",
            [str(root), base, base],
        )
        conn.execute(
            "INSERT INTO folders (id, library_id, parent_id, path, rel_path, name) "
            "VALUES (1, 1, NULL, x'', '', ''), (2, 1, 1, CAST('all' AS BLOB), 'all', 'all')"
        )
        # One poster picture and its cached row, shared by the titles that have one.
        conn.execute(
            "INSERT INTO sidecars (id, folder_id, raw_name, name, kind, role, size, mtime_ns, "
            "status) VALUES (1, 2, CAST('poster.jpg' AS BLOB), 'poster.jpg', 'artwork', "
            "'poster', 1, 1, 'ok')"
        )
        conn.execute("INSERT INTO artwork VALUES (1, '0123456789abcdef-400', 400, 600)")
        conn.executemany(
            "INSERT INTO shows (id, key, title, sort_title, year, poster_id, episodes, seasons, "
            "added_at, frame_media_id) VALUES (?, ?, ?, ?, ?, ?, ?, 5, ?, ?)",
            [
                (
                    s,
                    f"show{s}",
                    t := f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {s}",
                    t,
                    rng.randrange(1960, 2026),
                    1 if s % 3 == 0 else None,
                    EPISODES_PER_SHOW,
                    base + s,
                    (s - 1) * EPISODES_PER_SHOW + 1,
                )
                for s in range(1, n_shows + 1)
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO show_genres (genre, show_id) VALUES (?, ?)",
            [(g, s) for s in range(1, n_shows + 1) for g in _genres(rng)],
        )
        conn.execute("UPDATE shows_state SET regroup = 0")
    movie_id = 0
    for start in range(1, rows + 1, BATCH):
        ids = range(start, min(rows, start + BATCH - 1) + 1)
        media, files, parses, metas, movies, genres = [], [], [], [], [], []
        for i in ids:
            size = rng.randrange(200_000_000, 4_000_000_000)
            if i <= n_eps:
                show = (i - 1) // EPISODES_PER_SHOW + 1
                k = (i - 1) % EPISODES_PER_SHOW
                season, episode = k // 10 + 1, k % 10 + 1
                title = f"Show {show}"
                name = f"Show.{show}.S{season:02d}E{episode:02d}.mkv"
                metas.append((i, "episode", show, None, season, episode, 50))
                parses.append((i, title, None, season, episode))
            else:
                second = bool(movies) and rng.random() < 0.1  # another version of the last film
                if not second:
                    movie_id += 1
                    year = rng.randrange(1930, 2026)
                    mt = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {movie_id}"
                    movies.append(
                        (
                            movie_id,
                            f"m{movie_id}",
                            mt,
                            mt,
                            year,
                            1 if movie_id % 3 == 0 else None,
                            round(rng.uniform(1, 10), 1) if rng.random() < 0.8 else None,
                            rng.randrange(20, 90),
                            1,
                            base + i,
                            i,
                        )  # fmt: skip
                    )
                    genres += [(g, movie_id) for g in _genres(rng)]
                else:
                    movies[-1] = (*movies[-1][:8], 2, *movies[-1][9:])
                name = f"Film.{movie_id}.{i}.mkv"
                metas.append((i, "movie", None, movie_id, None, None, rng.randrange(20, 90)))
                parses.append((i, f"Film {movie_id}", 2000, None, None))
            w, h = rng.choice(((1920, 1080), (3840, 2160), (1280, 720)))
            media.append((i, f"{i:016x}", size, rng.uniform(1200, 7200), w, h, base + i))
            files.append((i, i, name.encode(), name, size, int((base + i) * 1e9), base + i))
        with dbmod.write(db):
            conn.executemany(
                "INSERT INTO media (id, media_hash, kind, size, probe_status, container, duration, "
                "width, height, video_codec, audio_codec, added_at) "
                "VALUES (?, ?, 'video', ?, 'ok', 'matroska', ?, ?, ?, 'h264', 'aac', ?)",
                media,
            )
            conn.executemany(
                "INSERT INTO files (id, media_id, library_id, folder_id, path, name, size, "
                "mtime_ns, first_seen) VALUES (?, ?, 1, 2, ?, ?, ?, ?, ?)",
                files,
            )
            conn.executemany(
                "INSERT INTO parses (file_id, title, year, season, episode) VALUES (?, ?, ?, ?, ?)",
                parses,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO movies (id, key, title, sort_title, year, poster_id, "
                "rating, quality, versions, added_at, best_media_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                movies,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO movie_genres (genre, movie_id) VALUES (?, ?)", genres
            )
            conn.executemany(
                "INSERT INTO file_meta (file_id, kind, show_id, movie_id, season, episode, "
                "quality) VALUES (?, ?, ?, ?, ?, ?, ?)",
                metas,
            )
        print(f"  b6-shows: {ids[-1]:,} of {rows:,} rows", end="\r", file=sys.stderr)
    for _, sql in triggers:
        conn.execute(sql)
    # What the dropped triggers would have written: the movies' sort keys (migration m0020).
    with dbmod.write(db):
        conn.execute(dbmod._MOVIE_KEYS.format(when="", where="1"))
        for kind, cols in dbmod._GENRE_KEYS.items():  # and the genre rows' (m0020d)
            conn.execute(
                f"UPDATE {kind}_genres SET ({cols}) = (SELECT {cols} FROM {kind}s t "
                f"WHERE t.id = {kind}_genres.{kind}_id)"
            )
    conn.execute("ANALYZE")
    db.close()
    took = time.perf_counter() - started
    print(f"  b6-shows: synthesized {rows:,} rows in {took:.0f} s", file=sys.stderr)
    marker.touch()
    return root


def cursors(data_dir: Path, n: int, rng: random.Random) -> tuple[list[str], dict[str, list[str]]]:
    """Return n random Shows-page cursors and n per movie sort, drawn from the database."""
    from services import db as dbmod
    from services.shows.grid import cursor

    db = dbmod.connect(data_dir / "library.db")
    top_show = db.execute("SELECT max(id) FROM shows").fetchone()[0]
    top_movie = db.execute("SELECT max(id) FROM movies").fetchone()[0]
    shows = []
    for _ in range(n):
        row = db.execute(
            "SELECT id, sort_title FROM shows WHERE id = ?", [rng.randrange(1, top_show + 1)]
        ).fetchone()
        shows.append(cursor(None, row[0], row[1]))
    movies: dict[str, list[str]] = {s: [] for s in SORTS}
    keys = {"title": "NULL", "year": "year_key", "added": "added_key", "rating": "rating_key"}
    keys["quality"] = "quality_key"
    for sort in SORTS:
        for _ in range(n):
            row = db.execute(
                f"SELECT {keys[sort]}, id, sort_title FROM movies WHERE id = ?",
                [rng.randrange(1, top_movie + 1)],
            ).fetchone()
            movies[sort].append(cursor(row[0], row[1], row[2]))
    db.close()
    return shows, movies


def sql_rows(bench: Bench, dirs: dict[int, Path], pages: int) -> None:
    """Time the pages' queries in-process in CPU seconds, deep pages, at both sizes.

    On a machine shared by many jobs (load 20-30 on two cores) the server rows measure the
    neighbours as much as the pages; CPU time of the queries alone says whether they stay flat.
    """
    from services import db as dbmod
    from services.shows import grid

    small, large = sorted(dirs)
    got: dict[tuple[int, str], Samples] = {}
    for n, data_dir in dirs.items():
        db = dbmod.connect(data_dir / "library.db")
        shows, movies = cursors(data_dir, pages, random.Random(5))
        runs = {"shows": [lambda c=c, db=db: grid.list_shows(db, after=c) for c in shows]}
        for sort in SORTS:
            runs[f"movies/{sort}"] = [
                lambda c=c, s=sort, db=db: grid.list_movies(db, sort=s, after=c, user_id=1)
                for c in movies[sort]
            ]
            kept = [grid.parse_filters(dict(parse_qsl(f))) for f in FILTERS]
            picks = [kept[k % len(kept)] for k in range(len(movies[sort]))]
            runs[f"movies/{sort} filtered"] = [
                lambda c=c, s=sort, db=db, f=f: grid.list_movies(
                    db, sort=s, after=c, user_id=1, filters=f
                )
                for c, f in zip(movies[sort], picks, strict=True)
            ]
        for kind, calls in runs.items():
            samples = got[(n, kind)] = Samples(f"{kind} SQL {n:,}")
            for call in calls:
                start = time.process_time()
                call()
                samples.add(time.process_time() - start)
        db.close()
    for kind in [k for n, k in got if n == small]:
        bench.compare(f"{kind} SQL CPU at {large:,} vs {small:,}", got[(small, kind)],
                      got[(large, kind)], target=1.3)  # fmt: skip


def _server_cpu(pid: int) -> float:
    """Return the CPU seconds the server (gunicorn's master and workers) has used so far.

    Summed over every thread's /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU), not
    the 10 ms clock ticks of utime/stime: a page costs a few milliseconds.
    """
    import psutil

    total = 0
    for proc in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True)):
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
    return total / 1e9


def cpu_rows(bench: Bench, dirs: dict[int, Path], root: Path, rounds: int) -> None:
    """Server CPU seconds per request (psutil), `/health` against each page, 100k and 1M.

    The wall-time rows measure the neighbours on a loaded machine; the CPU time the server's
    processes spend answering is what the page costs, whatever waits for a core. Blocks of 20
    requests of one kind in turn (health, shows, movies, filtered movies), each block's CPU over
    its requests; `rounds` blocks of each kind per server.
    """
    small, large = sorted(dirs)
    rng = random.Random(61)
    got: dict[tuple[int, str], Samples] = {}
    for n in (small, large):
        with server(dirs[n], root) as (port, pid):
            client = Client(port)
            shows, movies = cursors(dirs[n], rounds * 20 + 20, rng)
            paths = {
                "health": ["/health"] * len(shows),
                "shows": [f"/shows?after={quote(c)}" for c in shows],
                "movies": [
                    f"/movies?sort={SORTS[k % len(SORTS)]}&after="
                    + quote(movies[SORTS[k % len(SORTS)]][k])
                    for k in range(len(shows))
                ],
                "filtered movies": [
                    f"/movies?sort={SORTS[k % len(SORTS)]}&{FILTERS[k // 5 % len(FILTERS)]}"
                    f"&after={quote(movies[SORTS[k % len(SORTS)]][k])}"
                    for k in range(len(shows))
                ],
                # For scale: the gallery's folder page (60 cards) deep in the folder of every file.
                "gallery": [
                    f"/browse/lib/all?after={rng.randrange(1, n)}" for _ in range(len(shows))
                ],
            }
            for urls in paths.values():  # warm: templates, caches, the file in memory
                for url in urls[:20]:
                    client.get(url)
            for kind in paths:
                got[(n, kind)] = Samples(f"{kind} {n:,} server CPU per request")
            for b in range(rounds):
                for kind, urls in paths.items():
                    block = urls[20 + b * 20 : 40 + b * 20]
                    before = _server_cpu(pid)
                    for url in block:
                        client.get(url)
                    got[(n, kind)].add((_server_cpu(pid) - before) / len(block))
    for kind in ("shows", "movies", "filtered movies", "gallery"):
        bench.compare(
            f"{kind} page server CPU at {small:,} vs health",
            got[(small, "health")],
            got[(small, kind)],
            target=3,
        )
        bench.compare(
            f"{kind} page server CPU at {large:,} vs {small:,}",
            got[(small, kind)],
            got[(large, kind)],
            target=1.3,
        )


def main() -> int:
    """Run the Shows/Movies B6 and write bench/out/b6s.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=400, help="per variant")
    parser.add_argument("--sql", action="store_true", help="the queries in-process (sql_rows)")
    parser.add_argument("--cpu", action="store_true", help="server CPU per request (cpu_rows)")
    args = parser.parse_args()
    small, large = args.rows
    dirs = {n: CORPUS_DIR / f"b6s-data-{n}" for n in (small, large)}
    root = CORPUS_DIR / "b6-shows-library"
    for n, d in dirs.items():
        root = synthesize(d, n)
    if args.cpu:
        bench = Bench(
            "b6s-cpu",
            "Shows/Movies pages: server CPU per request against /health",
            params={"rows": [small, large], "rounds": args.requests // 20},
        )
        cpu_rows(bench, dirs, root, max(5, args.requests // 20))
        bench.finish()
        return 0
    if args.sql:
        bench = Bench(
            "b6s-sql", "Shows/Movies page queries, CPU per page", params={"rows": [small, large]}
        )
        sql_rows(bench, dirs, args.requests)
        bench.finish()
        return 0
    bench = Bench(
        "b6s",
        f"Shows and Movies pages (60 posters, deep keyset pages) at {small:,} and {large:,} items",
        params={"rows": [small, large], "requests": args.requests, "sorts": SORTS},
    )
    rng = random.Random(17)
    with server(dirs[small], root) as (p_small, _), server(dirs[large], root) as (p_large, _):
        clients = {small: Client(p_small), large: Client(p_large)}
        paths: dict[int, dict[str, list[str]]] = {}
        for n in (small, large):
            with open(dirs[n] / "library.db", "rb") as f:  # warm, as B1 is
                while f.read(1 << 24):
                    pass
            shows, movies = cursors(dirs[n], args.requests + 20, rng)
            paths[n] = {
                "shows": [f"/shows?after={quote(c)}" for c in shows],
                "movies": [
                    f"/movies?sort={SORTS[k % len(SORTS)]}&after="
                    + quote(movies[SORTS[k % len(SORTS)]][k])
                    for k in range(args.requests + 20)
                ],
                # Sorts in turn, and filters in turn (k // 5: each sort meets each filter).
                "filtered movies": [
                    f"/movies?sort={SORTS[k % len(SORTS)]}&{FILTERS[k // 5 % len(FILTERS)]}"
                    f"&after={quote(movies[SORTS[k % len(SORTS)]][k])}"
                    for k in range(args.requests + 20)
                ],
            }
        health = Samples("/health")
        got = {(n, kind): Samples(f"{kind} {n:,}") for n in (small, large) for kind in paths[small]}
        kinds = list(paths[small])
        for k in range(20):  # templates compiled, caches warm
            for n in (small, large):
                for kind in kinds:
                    clients[n].get(paths[n][kind][k])
        for k in range(20, args.requests + 20):
            health.add(clients[small].get("/health"))
            for n in (small, large):
                for kind in kinds:
                    got[(n, kind)].add(clients[n].get(paths[n][kind][k]))
        for kind in kinds:
            bench.compare(
                f"{kind} page p95 at {small:,} vs health",
                health,
                got[(small, kind)],
                target=3,
                stat="p95",
                headline=kind == "movies",
            )
            bench.compare(
                f"{kind} page p95 at {large:,} vs {small:,}",
                got[(small, kind)],
                got[(large, kind)],
                target=1.3,
                stat="p95",
            )
            bench.compare(f"{kind} page median at {small:,} vs health", health, got[(small, kind)])
            bench.compare(
                f"{kind} page median at {large:,} vs {small:,}",
                got[(small, kind)],
                got[(large, kind)],
            )
    bench.extra["p95_ms"] = {f"{k[1]} {k[0]}": s.p(95) * 1000 for k, s in got.items()}
    bench.extra["health_p95_ms"] = health.p(95) * 1000
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
